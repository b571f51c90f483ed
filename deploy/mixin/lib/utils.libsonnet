// Helpers shared by the alerts, rules and dashboard of the mixin.
{
  // Seconds as a Prometheus duration: 600 -> '10m', 5400 -> '90m', 86400 -> '1d'.
  duration(seconds)::
    local s = std.floor(seconds);
    if s % 86400 == 0 then '%dd' % (s / 86400)
    else if s % 3600 == 0 then '%dh' % (s / 3600)
    else if s % 60 == 0 then '%dm' % (s / 60)
    else '%ds' % s,

  // `a, b, c` for `by (...)` and `on (...)` clauses.
  labelList(labels):: std.join(', ', labels),

  // A Go-template query of `metric` for the alert's own authority, with `body` applied to
  // its first value, or `fallback` when there is none. Every label in `labels` is taken
  // from the alert, so the answer is the same whatever replica's data it came from.
  // `matchers` (such as 'state="offline"') narrow it further.
  templateQuery(metric, labels, body, fallback, matchers=[])::
    '{{ with printf `%s{%s}` %s | query }}{{ . | first | value | %s }}{{ else }}%s{{ end }}' % [
      metric,
      std.join(',', matchers + ['%s=%%q' % l for l in labels]),
      std.join(' ', ['$labels.%s' % l for l in labels]),
      body,
      fallback,
    ],
}

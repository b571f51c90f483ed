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

  // `without (a, b, c)`.
  without(labels):: 'without (%s)' % std.join(', ', labels),

  // Go-template prelude of an annotation that queries the alert's own series: `$all` holds
  // a matcher for every label of the alert (`,job="...",country="..."`, whatever labels
  // the user's series carry: cluster, env, ...), `$group` the same without `authority`
  // (the labels of the deployment). An alert's $labels are its expression's labels.
  templateMatchers(authority)::
    '{{ $all := "" }}{{ $group := "" }}{{ range $k, $v := $labels }}{{ if ne $k "__name__" }}'
    + '{{ $all = printf "%s,%s=%q" $all $k $v }}'
    + std.join('', ['{{ if ne $k "%s" }}' % l for l in authority])
    + '{{ $group = printf "%s,%s=%q" $group $k $v }}'
    + std.join('', ['{{ end }}' for l in authority])
    + '{{ end }}{{ end }}',

  // A Go-template query of `metric` for the alert's own series (every label of the alert,
  // from `templateMatchers`' `$all`), with `body` applied to its first value, or `fallback`
  // when there is none. `matchers` (such as 'state="offline"') narrow it further.
  templateQuery(metric, body, fallback, matchers=[])::
    '{{ with printf `{%s%%s}` $all | query }}{{ . | first | value | %s }}{{ else }}%s{{ end }}' % [
      std.join(',', ['__name__="%s"' % metric] + matchers),
      body,
      fallback,
    ],
}

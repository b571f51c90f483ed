// Alerts. Authority alerts are one per authority (groupLabels plus country and id_type),
// whatever the number of replicas; exporter alerts say whether anybody is watching.
local utils = import 'lib/utils.libsonnet';

{
  local c = $._config,
  local sel = c.selector,
  local authorityLabels = c.groupLabels + c.authorityLabels,
  local authority = utils.labelList(authorityLabels),
  local group = utils.labelList(c.groupLabels),
  local lookback = utils.duration(c.lookbackSeconds),
  local period = c.pollPeriodSeconds,

  // Annotation fragments that query the alert's own authority.
  local q(metric, body, fallback, matchers=[]) = utils.templateQuery(metric, authorityLabels, body, fallback, matchers),
  local rates =
    'Last 10-minute window: %s success; last hour: %s.' % [
      q('country_id_type:idauth_success_rate_10m:latest', 'humanizePercentage', 'unknown'),
      q('country_id_type:idauth_success_rate_1h:latest', 'humanizePercentage', 'unknown'),
    ],
  local since(state) =
    q('country_id_type:idauth_state_since:timestamp_seconds', 'humanizeTimestamp', 'an unknown time', ['state="%s"' % state]),
  local what = 'the ID authority behind {{ $labels.id_type }} checks in {{ $labels.country }}',

  local alert(name, severity, expr, summary, description, forSeconds=0) = {
    alert: name,
    expr: expr,
    [if forSeconds > 0 then 'for']: utils.duration(forSeconds),
    labels: { severity: severity } + c.alertLabels,
    annotations: {
      summary: summary,
      description: description,
      runbook_url: c.runbookURLPattern % std.asciiLower(name),
    },
  },

  // True while the authority's last observed state is `state` and has been observed in
  // `polls` consecutive checks: the provider times of the first and the newest check in
  // that state are (polls - 1) periods apart, give or take half a period. Counting checks,
  // not minutes, means no race with the poll schedule.
  local confirmed(state, polls) = |||
    max without (state) (
        country_id_type:idauth_state:latest{state="%(state)s"}
      - on (%(authority)s, state)
        country_id_type:idauth_state_since:timestamp_seconds{state="%(state)s"}
    ) >= %(threshold)d
  ||| % { state: state, authority: authority, threshold: std.max(0, (polls - 1) * period - period / 2) },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'idauth.authorities',
        rules: [
          alert(
            'IdAuthorityOffline',
            'critical',
            confirmed('offline', c.offlineConfirmationPolls),
            'ID authority offline: {{ $labels.country }} {{ $labels.id_type }}',
            'Smile ID reports %s as offline: jobs against it fail with result code 1015. %s Offline since %s.' % [what, rates, since('offline')],
          ),
          alert(
            'IdAuthorityDegraded',
            'warning',
            confirmed('interruption', c.interruptionConfirmationPolls),
            'ID authority degraded: {{ $labels.country }} {{ $labels.id_type }}',
            'Smile ID reports an interruption of %s: some jobs fail with result code 1015. %s Degraded since %s.' % [what, rates, since('interruption')],
          ),
          alert(
            'IdAuthorityFlapping',
            'warning',
            'changes(country_id_type:idauth_state_observed:code[%s]) >= %d' % [utils.duration(c.flappingWindowSeconds), c.flappingChanges],
            'ID authority flapping: {{ $labels.country }} {{ $labels.id_type }}',
            'The state of %s changed {{ $value }} times in the last %s. %s' % [what, utils.duration(c.flappingWindowSeconds), rates],
          ),
          alert(
            'IdAuthorityStatusUnknown',
            'warning',
            'min by (%s) (max_over_time(idauth_state{%s, state="unknown"}[%s])) == 1' % [authority, sel, lookback],
            'ID authority status unknown: {{ $labels.country }} {{ $labels.id_type }}',
            'No replica of idauth-exporter has had a fresh status of %s for %s: its polls fail (for longer than the exporter keeps data), the provider has no data for the pair, or it reports a status the exporter does not know. Last observed: %s.' % [
              what,
              utils.duration(c.unknownForSeconds),
              q('country_id_type:idauth_state:latest', 'humanizeTimestamp', 'never'),
            ],
            c.unknownForSeconds,
          ),
          alert(
            'IdAuthorityDataStale',
            'warning',
            |||
              time() - max by (%(authority)s) (max_over_time(idauth_last_checked_timestamp_seconds{%(sel)s}[%(lookback)s])) > %(stale)d
                and on (%(authority)s)
              max by (%(authority)s) (max_over_time(idauth_poll_success{%(sel)s}[%(lookback)s])) == 1
            ||| % { authority: authority, sel: sel, lookback: lookback, stale: c.providerStaleSeconds },
            'Stale provider data: {{ $labels.country }} {{ $labels.id_type }}',
            'Smile ID last checked %s {{ $value | humanizeDuration }} ago, although the polls succeed: the provider\'s own monitoring of it has stopped, and its reported state may be old.' % what,
            300,
          ),
        ],
      },
      {
        name: 'idauth.exporter',
        rules: [
          alert(
            'IdAuthExporterDown',
            'critical',
            'sum by (%(group)s) (up{%(sel)s}) == 0 or absent(up{%(sel)s})' % { group: group, sel: sel },
            'idauth-exporter is down: nobody watches the ID authorities',
            'Prometheus cannot scrape any replica of idauth-exporter ({{ $labels.job }}), or has no such target: nobody is watching the ID authorities. Open pages stay open as last observed; new outages cannot page.',
            c.exporterDownForSeconds,
          ),
          alert(
            'IdAuthExporterReplicaDown',
            'warning',
            'up{%(sel)s} == 0 and on (%(group)s) (sum by (%(group)s) (up{%(sel)s}) > 0)' % { group: group, sel: sel },
            'idauth-exporter replica {{ $labels.instance }} is down',
            'Prometheus cannot scrape {{ $labels.instance }}; other replicas still watch the ID authorities, so nothing is missed, but there is no spare.',
            c.exporterDownForSeconds,
          ),
          alert(
            'IdAuthExporterStalled',
            'critical',
            'min by (%(group)s) (time() - max_over_time(idauth_poll_cycle_last_run_timestamp_seconds{%(sel)s}[%(lookback)s])) > %(after)d' % { group: group, sel: sel, lookback: lookback, after: c.stalledAfterSeconds },
            'idauth-exporter: no replica has polled for {{ $value | humanizeDuration }}',
            'Every replica of idauth-exporter is up, but none has started a poll cycle for {{ $value | humanizeDuration }} (the schedule runs every %s): every state it serves is going stale.' % utils.duration(period),
          ),
          alert(
            'IdAuthExporterReplicaStalled',
            'warning',
            |||
              time() - max_over_time(idauth_poll_cycle_last_run_timestamp_seconds{%(sel)s}[%(lookback)s]) > %(after)d
                and on (%(group)s)
              min by (%(group)s) (time() - max_over_time(idauth_poll_cycle_last_run_timestamp_seconds{%(sel)s}[%(lookback)s])) <= %(after)d
            ||| % { group: group, sel: sel, lookback: lookback, after: c.stalledAfterSeconds },
            'idauth-exporter replica {{ $labels.instance }}: no poll cycle for {{ $value | humanizeDuration }}',
            'The replica {{ $labels.instance }} is up but has not started a poll cycle for {{ $value | humanizeDuration }}; other replicas still poll.',
          ),
          alert(
            'IdAuthExporterPollsFailing',
            'warning',
            'instance:idauth_poll_failures:ratio_rate30m{%s} > %g' % [sel, c.pollFailureRatio],
            'idauth-exporter {{ $labels.instance }}: most polls fail',
            "{{ $value | humanizePercentage }} of this replica's polls of Smile ID failed over the last 30 minutes. The authorities' states will turn unknown. Failures by reason are in idauth_poll_failures_total.",
          ),
          alert(
            'IdAuthExporterUnauthorized',
            'critical',
            |||
              sum by (%(group)s) (increase(idauth_poll_failures_total{%(sel)s, reason="unauthorized"}[%(window)s])) > 0
                and on (%(group)s)
              max by (%(group)s) (max_over_time(idauth_poll_success{%(sel)s}[%(lookback)s])) == 0
            ||| % { group: group, sel: sel, lookback: lookback, window: utils.duration(2 * period) },
            'idauth-exporter: Smile ID refuses its credentials',
            'Every poll of every replica fails as unauthorized: the API key was rotated or revoked, belongs to the other environment, or the partner ID is wrong. No ID authority is being watched.',
            c.unauthorizedForSeconds,
          ),
          alert(
            'IdAuthExporterDiscoveryFailing',
            'warning',
            'min by (%(group)s) (time() - max_over_time(idauth_discovery_last_success_timestamp_seconds{%(sel)s}[%(lookback)s])) > %(after)d' % { group: group, sel: sel, lookback: lookback, after: c.discoveryFailingAfterSeconds },
            "idauth-exporter: Smile ID's catalogue not read for {{ $value | humanizeDuration }}",
            "No replica of idauth-exporter has read Smile ID's catalogue (discovery) for {{ $value | humanizeDuration }}. The pairs it last listed are still watched, but pairs the provider added since are not. Failures are counted in idauth_discovery_refreshes_total{result=\"failure\"}; the exporter log says why.",
          ),
        ],
      },
    ],
  },
}

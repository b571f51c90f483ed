// Alerts. Authority alerts are one per authority (every label but the replicas', plus
// country and id_type), whatever the number of replicas; exporter alerts say whether
// anybody is watching, and when nobody is, only the cause speaks:
//
//   IdAuthExporterDown         no replica can be scraped (or there is no target)
//   IdAuthExporterStalled      they can, but no replica starts poll cycles
//   IdAuthExporterUnauthorized they poll, but Smile ID refuses the key
//   IdAuthExporterBlind        anything else that keeps every poll from succeeding
//                              (provider unreachable, crash loops): excluded by the
//                              expressions while Stalled's or Unauthorized's condition
//                              holds; the Alertmanager example inhibits it under Down
//
// and the consequences (unknown or stale authorities, failing polls) are inhibited by
// the cause in the Alertmanager example, or excluded by their own expressions.
//
// Webhook alerts (IdAuthWebhook*) are one per webhook: a receiver has a change once any
// replica delivered it (see the idauth.webhooks group).
local utils = import 'lib/utils.libsonnet';

{
  local c = $._config,
  local sel = c.selector,
  local replicas = utils.without(c.replicaLabels),
  local replicaList = utils.labelList(c.replicaLabels),
  local deployment = utils.without(c.replicaLabels + c.authorityLabels),
  local lookback = utils.duration(c.lookbackSeconds),
  local period = c.pollPeriodSeconds,

  // Annotation fragments that query the alert's own authority (every label of the alert).
  local prelude = utils.templateMatchers(c.authorityLabels),
  local q(metric, body, fallback, matchers=[]) = utils.templateQuery(metric, body, fallback, matchers),
  local rates =
    'Last 10-minute window: %s success; last hour: %s.' % [
      q('country_id_type:idauth_success_rate_10m:latest', 'humanizePercentage', 'unknown'),
      q('country_id_type:idauth_success_rate_1h:latest', 'humanizePercentage', 'unknown'),
    ],
  local since(state) =
    q('country_id_type:idauth_state_since:timestamp_seconds', 'humanizeTimestamp', 'an unknown time', ['state="%s"' % state]),
  local what = 'the ID authority behind {{ $labels.id_type }} checks in {{ $labels.country }}',
  // Set (non-empty) while no replica serves the pair any more although the replicas serve
  // others: the alert is about to end because the pair is no longer watched, not because
  // it recovered. A resolved notification carries the annotations of the alert's last
  // firing evaluation, so the Alertmanager template can tell the two apart.
  local unwatched =
    prelude
    + '{{ if and (query (printf `group(idauth_state{' + sel + '%s})` $group))'
    + ' (not (query (printf `group(present_over_time(idauth_state{' + sel + '%s}[' + lookback + ']))` $all))) }}'
    + 'No replica of idauth-exporter serves this pair any more, while they serve others: it was removed from the configuration (or from the provider\'s catalogue). This alert ends because the pair is no longer watched, not because the authority recovered.'
    + '{{ end }}',

  local alert(name, severity, expr, summary, description, forSeconds=0, extra={}) = {
    alert: name,
    expr: expr,
    [if forSeconds > 0 then 'for']: utils.duration(forSeconds),
    labels: { severity: severity } + c.alertLabels,
    annotations: {
      summary: summary,
      description: description,
      runbook_url: c.runbookURLPattern % std.asciiLower(name),
    } + extra,
  },

  // True while the authority's last observed state is `state` and has been observed in
  // `polls` consecutive checks: the times of the first and the newest check in that state
  // are (polls - 1) periods apart, give or take half a period. Counting checks, not
  // minutes, means no race with the poll schedule.
  local confirmed(state, polls) = |||
    max without (state) (
        country_id_type:idauth_state:latest{state="%(state)s"}
      -
        country_id_type:idauth_state_since:timestamp_seconds{state="%(state)s"}
    ) >= %(threshold)d
  ||| % { state: state, threshold: std.max(0, (polls - 1) * period - period / 2) },

  // Every replica refuses... : some poll was refused as unauthorized within two periods,
  // and no poll of any replica succeeded within the look-back.
  local unauthorized = |||
    sum %(deploymentReason)s (increase(idauth_poll_failures_total{%(sel)s, reason="unauthorized"}[%(window)s])) > 0
      and
    max %(deployment)s (max_over_time(idauth_poll_success{%(sel)s}[%(lookback)s])) == 0
  ||| % {
    deploymentReason: utils.without(c.replicaLabels + c.authorityLabels + ['reason']),
    deployment: deployment,
    sel: sel,
    lookback: lookback,
    window: utils.duration(2 * period),
  },
  // Each replica's wait for its oldest undelivered change to a webhook (0 when none waits),
  // read with max_over_time so that a failed scrape neither drops a replica from the
  // minimum below nor resets a `for:`.
  local webhookAge = 'max_over_time(idauth_webhook_oldest_pending_age_seconds{%s}[%s])' % [sel, lookback],
  local heartbeatAge = 'time() - max_over_time(idauth_poll_cycle_last_run_timestamp_seconds{%s}[%s])' % [sel, lookback],
  local stalled = 'min %s (%s) > %d' % [replicas, heartbeatAge, c.stalledAfterSeconds],

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'idauth.authorities',
        rules: [
          alert(
            'IdAuthorityOffline',
            'critical',
            'country_id_type:idauth_offline_incident_start:timestamp_seconds',
            'ID authority offline: {{ $labels.country }} {{ $labels.id_type }}',
            prelude + 'Smile ID reports %s as offline: jobs against it fail with result code 1015. %s Offline since {{ $value | humanizeTimestamp }}.' % [what, rates],
            extra={ unwatched: unwatched },
          ),
          alert(
            'IdAuthorityDegraded',
            'warning',
            confirmed('interruption', c.interruptionConfirmationPolls),
            'ID authority degraded: {{ $labels.country }} {{ $labels.id_type }}',
            prelude + 'Smile ID reports an interruption of %s: some jobs fail with result code 1015. %s Degraded since %s.' % [what, rates, since('interruption')],
            extra={ unwatched: unwatched },
          ),
          alert(
            'IdAuthorityFlapping',
            'warning',
            'changes(country_id_type:idauth_state_observed:code[%s]) >= %d' % [utils.duration(c.flappingWindowSeconds), c.flappingChanges],
            'ID authority flapping: {{ $labels.country }} {{ $labels.id_type }}',
            prelude + 'The state of %s changed {{ $value }} times in the last %s. %s' % [what, utils.duration(c.flappingWindowSeconds), rates],
          ),
          alert(
            'IdAuthorityStatusUnknown',
            'warning',
            // Not while the pair's polls are refused as unauthorized: IdAuthExporterUnauthorized
            // speaks (a rollout with a wrong key shows every pair unknown from the new
            // pods' start, before the key alert's confirmation).
            |||
              min %(replicasState)s (max_over_time(idauth_state{%(sel)s, state="unknown"}[%(lookback)s])) == 1
                unless
              sum %(replicasReason)s (increase(idauth_poll_failures_total{%(sel)s, reason="unauthorized"}[%(window)s])) > 0
            ||| % {
              replicasState: utils.without(c.replicaLabels + ['state']),
              replicasReason: utils.without(c.replicaLabels + ['reason']),
              sel: sel,
              lookback: lookback,
              window: utils.duration(2 * period),
            },
            'ID authority status unknown: {{ $labels.country }} {{ $labels.id_type }}',
            prelude + 'No replica of idauth-exporter has had a fresh status of %s for %s: its polls fail (for longer than the exporter keeps data), the provider has no data for the pair, or it reports a status the exporter does not know. Last observed: %s.' % [
              what,
              utils.duration(c.unknownForSeconds),
              q('country_id_type:idauth_state:latest', 'humanizeTimestamp', 'never'),
            ],
            c.unknownForSeconds,
          ),
          alert(
            'IdAuthorityDataStale',
            'warning',
            // The provider's check (bounded by our poll) is old, although some replica
            // polled the pair successfully within `ownPollFreshSeconds`: when our own polls
            // stop or fail, the provider is not to blame.
            |||
              time() - (
                  (
                      max %(replicas)s (max_over_time(idauth_last_checked_timestamp_seconds{%(sel)s}[%(lookback)s]))
                    <=
                      max %(replicas)s (max_over_time(idauth_last_poll_success_timestamp_seconds{%(sel)s}[%(lookback)s]))
                  )
                or
                  max %(replicas)s (max_over_time(idauth_last_poll_success_timestamp_seconds{%(sel)s}[%(lookback)s]))
              ) > %(stale)d
                and
              time() - max %(replicas)s (max_over_time(idauth_last_poll_success_timestamp_seconds{%(sel)s}[%(lookback)s])) < %(fresh)d
            ||| % { replicas: replicas, sel: sel, lookback: lookback, stale: c.providerStaleSeconds, fresh: c.ownPollFreshSeconds },
            'Stale provider data: {{ $labels.country }} {{ $labels.id_type }}',
            'Smile ID last checked %s {{ $value | humanizeDuration }} ago, although our polls succeed: the provider\'s own monitoring of it has stopped, and its reported state may be old.' % what,
            300,
          ),
          alert(
            'IdAuthorityNoLongerWatched',
            'info',
            'country_id_type:idauth_unwatched:timestamp_seconds',
            'ID authority no longer watched: {{ $labels.country }} {{ $labels.id_type }}',
            'No replica of idauth-exporter has served {{ $labels.country }} {{ $labels.id_type }} for %s, while they serve other pairs: it was removed from the configuration (or from the provider\'s catalogue, with discovery on). Its alerts have ended without a recovery, and its state is no longer known. Nothing to do if the removal was intended.' % utils.duration(c.unwatchedAfterSeconds),
          ),
        ],
      },
      {
        name: 'idauth.exporter',
        rules: [
          alert(
            'IdAuthExporterDown',
            'critical',
            'sum %(replicas)s (up{%(sel)s}) == 0 or absent(up{%(sel)s})' % { replicas: replicas, sel: sel },
            'idauth-exporter is down: nobody watches the ID authorities',
            'Prometheus cannot scrape any replica of idauth-exporter ({{ $labels.job }}), or has no such target: nobody is watching the ID authorities. Open pages stay open as last observed; new outages cannot page.',
            c.exporterDownForSeconds,
          ),
          alert(
            'IdAuthExporterReplicaDown',
            'warning',
            'up{%(sel)s} == 0 and ignoring (%(replicaList)s) (sum %(replicas)s (up{%(sel)s}) > 0)' % { replicas: replicas, replicaList: replicaList, sel: sel },
            'idauth-exporter replica {{ $labels.instance }} is down',
            'Prometheus cannot scrape {{ $labels.instance }}; other replicas still watch the ID authorities, so nothing is missed, but there is no spare.',
            c.exporterDownForSeconds,
          ),
          alert(
            'IdAuthExporterStalled',
            'critical',
            stalled,
            'idauth-exporter: no replica has polled for {{ $value | humanizeDuration }}',
            'Every replica of idauth-exporter is up, but none has started a poll cycle for {{ $value | humanizeDuration }} (the schedule runs every %s): every state it serves is going stale.' % utils.duration(period),
          ),
          alert(
            'IdAuthExporterReplicaStalled',
            'warning',
            |||
              %(age)s > %(after)d
                and ignoring (%(replicaList)s)
              min %(replicas)s (%(age)s) <= %(after)d
            ||| % { age: heartbeatAge, replicas: replicas, replicaList: replicaList, after: c.stalledAfterSeconds },
            'idauth-exporter replica {{ $labels.instance }}: no poll cycle for {{ $value | humanizeDuration }}',
            'The replica {{ $labels.instance }} is up but has not started a poll cycle for {{ $value | humanizeDuration }}; other replicas still poll.',
            c.replicaStalledForSeconds,
          ),
          alert(
            'IdAuthExporterBlind',
            'critical',
            |||
              (time() - job:idauth_blind_since:timestamp_seconds > %(after)d)
                unless
              (%(stalled)s)
                unless
              (
                %(unauthorized)s
              )
            ||| % { after: c.blindAfterSeconds, stalled: stalled, unauthorized: std.stripChars(unauthorized, '\n') },
            'idauth-exporter is blind: no successful poll for {{ $value | humanizeDuration }}',
            'Prometheus can scrape idauth-exporter ({{ $labels.job }}), but no replica has completed a successful poll of Smile ID for {{ $value | humanizeDuration }}: nobody is watching the ID authorities, and a new outage cannot page. Either every poll fails (the provider unreachable: idauth_poll_failures_total by reason) or the replicas crash before they finish one (restarts: changes(process_start_time_seconds[1h])). Open pages stay open as last observed.',
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
            unauthorized,
            'idauth-exporter: Smile ID refuses its credentials',
            'Every poll of every replica fails as unauthorized: the API key was rotated or revoked, belongs to the other environment, or the partner ID is wrong. No ID authority is being watched.',
            c.unauthorizedForSeconds,
          ),
          alert(
            'IdAuthExporterDiscoveryFailing',
            'warning',
            'min %(replicas)s (time() - max_over_time(idauth_discovery_last_success_timestamp_seconds{%(sel)s}[%(lookback)s])) > %(after)d' % { replicas: replicas, sel: sel, lookback: lookback, after: c.discoveryFailingAfterSeconds },
            "idauth-exporter: Smile ID's catalogue not read for {{ $value | humanizeDuration }}",
            "No replica of idauth-exporter has read Smile ID's catalogue (discovery) for {{ $value | humanizeDuration }}. The pairs it last listed are still watched, but pairs the provider added since are not. Failures are counted in idauth_discovery_refreshes_total{result=\"failure\"}; the exporter log says why.",
          ),
        ],
      },
      // The webhooks. Every replica sends every change of state itself (same webhook-id), and
      // receivers deduplicate, so a receiver lacks a change only when no replica delivered
      // it. Hence the minimum over the replicas: IdAuthWebhookFailing fires when EVERY
      // replica (scraped now) has had a delivery waiting longer than the threshold, which
      // is when the receiver really lacks changes (receiver down, wrong secret, its
      // certificate, a firewall in front of it). With the maximum, one replica whose own
      // egress is broken would say "the receiver lacks changes" while the others deliver
      // them. That replica is not hidden either: IdAuthWebhookReplicaFailing names it (as
      // ReplicaDown and ReplicaStalled do), so whenever some replica has waited longer than
      // the threshold, one of the two fires. One limit: a replica that never had the change
      // (started after it without the others' store) has nothing waiting and keeps the
      // minimum low; the replica alert then fires, and its description says to check the
      // receiver in that case.
      {
        name: 'idauth.webhooks',
        rules: [
          alert(
            'IdAuthWebhookFailing',
            'warning',
            // No `for:`: the threshold is on the wait itself, which survives restarts (the
            // outbox is on disk, and the exporter computes the age at scrape time).
            'min %(replicas)s (%(age)s) > %(after)d' % { replicas: replicas, age: webhookAge, after: c.webhookFailingAfterSeconds },
            'Webhook {{ $labels.webhook }}: changes of state undelivered for {{ $value | humanizeDuration }}',
            'Every replica of idauth-exporter ({{ $labels.job }}) has had a change of state waiting for delivery to the webhook {{ $labels.webhook }} for at least {{ $value | humanizeDuration }}: the receiver has not got it from any of them (one replica\'s delivery would do: receivers deduplicate by webhook-id). idauth_webhook_deliveries_total by result says how deliveries fail (rejected: a non-2xx answer, such as 401 or 403 for a wrong secret; timeout; unreachable: connection refused, DNS, TLS), and the exporter log says why ("webhook delivery failed", webhook={{ $labels.webhook }}). Nothing is lost yet: the outbox keeps the changes on disk and retries them for 24 hours or more.',
          ),
          alert(
            'IdAuthWebhookReplicaFailing',
            'warning',
            |||
              %(age)s > %(after)d
                and ignoring (%(replicaList)s)
              min %(replicas)s (%(age)s) <= %(after)d
            ||| % { age: webhookAge, replicas: replicas, replicaList: replicaList, after: c.webhookFailingAfterSeconds },
            'idauth-exporter replica {{ $labels.instance }}: webhook {{ $labels.webhook }} deliveries waiting for {{ $value | humanizeDuration }}',
            'The replica {{ $labels.instance }} has had a change of state waiting for delivery to the webhook {{ $labels.webhook }} for {{ $value | humanizeDuration }}, while another replica has nothing waiting that long: the receiver most likely got the change from that replica (receivers deduplicate by webhook-id), and the way from this replica to the receiver is broken (its egress, DNS, proxy, firewall or CA certificates; the exporter log says why: "webhook delivery failed", webhook={{ $labels.webhook }}). Nothing is lost while another replica delivers; this one gives up after 24 hours or more. If the other replicas started after the change without this one\'s store, they never had it: check the receiver as for IdAuthWebhookFailing.',
            c.webhookReplicaFailingForSeconds,
          ),
          alert(
            'IdAuthWebhookEventsLost',
            'warning',
            // Per replica: its deliveries given up on (expired after 24 hours or more of
            // retries, or dropped from a full outbox) within the window, 0 for a replica that
            // serves the webhook but no such counter; then the minimum over the replicas that
            // serve the webhook now. A replica that alone gives up has been named by
            // IdAuthWebhookReplicaFailing for a day, while the others delivered. `removed`
            // (the webhook taken out of the configuration) is intended, not a loss.
            |||
              min %(replicas)s (
                  (
                      sum without (reason) (increase(idauth_webhook_dropped_total{%(sel)s, reason=~"expired|overflow"}[%(window)s]))
                    or
                      0 * max_over_time(idauth_webhook_pending{%(sel)s}[%(lookback)s])
                  )
                and
                  max_over_time(idauth_webhook_pending{%(sel)s}[%(lookback)s])
              ) > 0
            ||| % { replicas: replicas, sel: sel, lookback: lookback, window: utils.duration(c.webhookLostWindowSeconds) },
            'Webhook {{ $labels.webhook }}: changes of state lost',
            'Every replica of idauth-exporter ({{ $labels.job }}) gave up on some delivery to the webhook {{ $labels.webhook }} within the last %s: it failed for 24 hours or more (expired), or the outbox for the webhook was full (overflow). The receiver has not got those changes from any replica, and nothing will send them again: replay them by hand from /api/v1/events (idauth_webhook_dropped_total by reason says which case it is).' % utils.duration(c.webhookLostWindowSeconds),
          ),
        ],
      },
    ],
  },
}

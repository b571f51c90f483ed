// Recording rules. Every rule aggregates away the labels that differ between replicas
// (`replicaLabels`: instance, pod, ...) with `without (...)` and keeps every other label,
// so N replicas, rollouts and restarts give one series per authority, while the labels a
// user adds (cluster, env, region, or a global ruler's external labels) survive.
//
// How an authority's state is followed across replicas and restarts: every observation is
// stamped with the provider's own time of the check it reports (`last_checked`, the same
// on every replica), never later than the poll that brought it. The latest observation
// wins, whichever replica made it, and it is remembered for `memorySeconds`, so a replica
// that restarts, dies or serves stale data changes nothing until some replica observes
// something newer. Since when is read from the exporter, which keeps it across restarts,
// and remembered the same way.
local utils = import 'lib/utils.libsonnet';

{
  local c = $._config,
  local sel = c.selector,
  local memory = utils.duration(c.memorySeconds),
  local lookback = utils.duration(c.lookbackSeconds),
  local period = c.pollPeriodSeconds,
  // Aggregations: to one series per authority (and observed state) ...
  local replicas = utils.without(c.replicaLabels),
  // ... and to one series per deployment (job, cluster, ...).
  local deployment = utils.without(c.replicaLabels + c.authorityLabels),
  local authority = utils.labelList(c.authorityLabels),

  // The time of the observation a replica serves for each pair: the provider's
  // `last_checked`, bounded by the poll that brought it (`last_poll_success`), so that a
  // provider clock ahead of ours (an hour ahead, or a response dated 2100) cannot order
  // the observations, hold a state for a day, or move "since". The exporter clamps it
  // itself (and a time before 2000); the rules do it again, for an exporter that does not.
  // Nothing is later than the evaluation.
  local observedAt = |||
    clamp_max(
        (idauth_last_checked_timestamp_seconds{%(sel)s} <= idauth_last_poll_success_timestamp_seconds{%(sel)s})
      or
        idauth_last_poll_success_timestamp_seconds{%(sel)s}
      or
        idauth_last_checked_timestamp_seconds{%(sel)s},
      time()
    )
  ||| % { sel: sel },
  // Each replica's since, bounded the same way: never later than its observation.
  local sinceAt = |||
    (idauth_state_since_timestamp_seconds{%(sel)s} <= %(observed)s)
    or
    %(observed)s
  ||| % { sel: sel, observed: std.stripChars(observedAt, '\n') },
  local inState = '(idauth_state{%s, state!="unknown"} == 1)' % sel,

  local offlineThreshold = std.max(0, (c.offlineConfirmationPolls - 1) * period - period / 2),
  local recoveryThreshold = std.max(0, c.recoveryConfirmationPolls * period - period / 2),
  local served(window) = 'max %s (present_over_time(idauth_state{%s, state="unknown"}[%s]))' % [utils.without(c.replicaLabels + ['state']), sel, window],

  prometheusRules+:: {
    groups+: [
      {
        name: 'idauth.rules',
        rules: [
          {
            // The time of the newest check that some replica reports in each state (online,
            // interruption, offline), now.
            record: 'country_id_type_state:idauth_observation_timestamp_seconds:max',
            expr: |||
              max %(replicas)s (
                  %(inState)s
                * ignoring (state) group_left ()
                  %(observed)s
              )
            ||| % { replicas: replicas, inState: inState, observed: std.stripChars(observedAt, '\n') },
          },
          {
            // Pairs no longer watched: served by some replica within `unwatchedReportSeconds`
            // but by none for `unwatchedAfterSeconds`, while the same deployment's replicas
            // serve other pairs now (so not while every replica is down, restarting or
            // gone: that is nobody watching, and the pages stay open). A pair removed from
            // the configuration or from the provider's catalogue. The value is the time of
            // the evaluation; remembered, it makes the rules forget what was observed
            // before, so that a pair added back starts afresh.
            record: 'country_id_type:idauth_unwatched:timestamp_seconds',
            expr: |||
              (
                  (
                      %(servedReport)s
                    unless
                      %(servedAfter)s
                  )
                    and ignoring (%(authority)s)
                  group %(deployment)s (idauth_state{%(sel)s, state="unknown"})
              ) * 0 + time()
            ||| % {
              servedReport: served(utils.duration(c.unwatchedReportSeconds)),
              servedAfter: served(utils.duration(c.unwatchedAfterSeconds)),
              authority: authority,
              deployment: utils.without(c.replicaLabels + c.authorityLabels + ['state']),
              sel: sel,
            },
          },
          {
            // The newest check in each state, remembered for `memorySeconds`: bridges
            // restarts, rollouts, dead replicas and stale data.
            record: 'country_id_type_state:idauth_observation_timestamp_seconds:remembered',
            expr: 'max_over_time(country_id_type_state:idauth_observation_timestamp_seconds:max[%s])' % memory,
          },
          {
            // The same, less what was observed before the pair was last unwatched.
            record: 'country_id_type_state:idauth_observation_timestamp_seconds:latest',
            expr: |||
              country_id_type_state:idauth_observation_timestamp_seconds:remembered
                unless
              (
                  country_id_type_state:idauth_observation_timestamp_seconds:remembered
                    <= ignoring (state) group_left ()
                  max_over_time(country_id_type:idauth_unwatched:timestamp_seconds[%(memory)s])
              )
            ||| % { memory: memory },
          },
          {
            // The authority's state as last observed (one series, labelled with the state;
            // the value is the time of that observation).
            record: 'country_id_type:idauth_state:latest',
            expr: |||
              country_id_type_state:idauth_observation_timestamp_seconds:latest
                == ignoring (state) group_left ()
              max without (state) (country_id_type_state:idauth_observation_timestamp_seconds:latest)
            |||,
          },
          {
            // What the replicas say, now: per authority and observed state, the earliest
            // `idauth_state_since_timestamp_seconds` among the replicas that currently show
            // that state (each bounded by that replica's observation). The exporter serves
            // the start of its current run of the state in provider time (the `last_checked`
            // of the run's first check), the same on every replica and across restarts; a
            // replica that lost its store, or started later, reports a later start, so the
            // earliest wins. A replica whose data is stale shows `unknown`, with a since of
            // its own (when its data went stale): left out.
            record: 'country_id_type_state:idauth_state_since_timestamp_seconds:min',
            expr: |||
              min %(replicas)s (
                  %(inState)s
                * ignoring (state) group_left ()
                  (
                    %(since)s
                  )
              )
            ||| % { replicas: replicas, inState: inState, since: std.stripChars(sinceAt, '\n') },
          },
          {
            // Since when the authority has been in its last observed state, one series per
            // authority, labelled with the state: the earliest start of the current run
            // that anybody reported, remembered. Each evaluation takes the minimum of
            //  - what the replicas say now (the rule above),
            //  - this rule's own last value (last_over_time over `memorySeconds`), so that
            //    the answer survives every replica being down, restarting or stale, and a
            //    replica without its store that alone reports a later start,
            // each kept only for the last observed state and only when later than the
            // newest check remembered in any other state and than the last time the pair
            // was unwatched (0 where there is neither): a run is always later than the last
            // check of another state, so an earlier run of the same state (offline this
            // morning, online since, offline again) never counts.
            // Where neither is left, the newest check in the state stands in (a replica
            // that missed the other state's check reports a start from before it), and
            // being a minimum, it stays at the first such check.
            // No subquery: one range, over one recorded series per authority.
            record: 'country_id_type:idauth_state_since:timestamp_seconds',
            expr: |||
              min without (since_source) (
                  (
                      (
                          country_id_type_state:idauth_state_since_timestamp_seconds:min
                        or
                          label_replace(last_over_time(country_id_type:idauth_state_since:timestamp_seconds[%(memory)s]), "since_source", "remembered", "", "")
                      )
                        and ignoring (since_source)
                      country_id_type:idauth_state:latest
                  )
                    > ignoring (state, since_source) group_left ()
                  max without (state, since_source) (
                      (
                          country_id_type_state:idauth_observation_timestamp_seconds:latest
                            unless
                          country_id_type:idauth_state:latest
                      )
                    or
                      country_id_type:idauth_state:latest * 0
                    or
                      label_replace(max_over_time(country_id_type:idauth_unwatched:timestamp_seconds[%(memory)s]), "since_source", "unwatched", "", "")
                  )
                or ignoring (since_source)
                  country_id_type:idauth_state:latest
              )
            ||| % { memory: memory },
          },
          {
            // An open outage that has recovered: the time of its last offline check, while
            // the newest check in another state (online or interruption) is
            // `recoveryConfirmationPolls` checks later (less half a period).
            record: 'country_id_type:idauth_offline_recovered:timestamp_seconds',
            expr: |||
              max without (state) (country_id_type_state:idauth_observation_timestamp_seconds:latest{state="offline"})
                <=
              max without (state) (country_id_type_state:idauth_observation_timestamp_seconds:latest{state!="offline"}) - %(threshold)d
            ||| % { threshold: recoveryThreshold },
          },
          {
            // The open outage of an authority (IdAuthorityOffline), one series per
            // authority; the value is when it began (the since of its first confirmed
            // offline run). It opens when the newest check is offline and `offlineConfirmationPolls`
            // checks after the first check of the run (less half a period): counting checks,
            // not minutes, so one offline poll between online ones never opens it, however
            // late the next poll lands. It stays open (this rule's own last value,
            // remembered) until a recovery is confirmed after it (hysteresis: a single
            // online check between offline ones keeps one incident), the pair is unwatched,
            // or nothing was observed of it for `memorySeconds`. Nobody watching (every
            // replica down, restarting or stale) changes nothing.
            record: 'country_id_type:idauth_offline_incident_start:timestamp_seconds',
            expr: |||
              min without (incident_source) (
                  (
                      max without (state) (country_id_type:idauth_state_since:timestamp_seconds{state="offline"})
                        and
                      (
                          max without (state) (country_id_type:idauth_state:latest{state="offline"})
                        - max without (state) (country_id_type:idauth_state_since:timestamp_seconds{state="offline"})
                        >= %(threshold)d
                      )
                    or
                      label_replace(last_over_time(country_id_type:idauth_offline_incident_start:timestamp_seconds[%(memory)s]), "incident_source", "remembered", "", "")
                  )
                    > ignoring (incident_source) group_left ()
                  max without (state, incident_source) (
                      label_replace(max_over_time(country_id_type:idauth_offline_recovered:timestamp_seconds[%(memory)s]), "incident_source", "recovered", "", "")
                    or
                      label_replace(max_over_time(country_id_type:idauth_unwatched:timestamp_seconds[%(memory)s]), "incident_source", "unwatched", "", "")
                    or
                      country_id_type:idauth_state_since:timestamp_seconds * 0
                  )
              )
            ||| % { threshold: offlineThreshold, memory: memory },
          },
          {
            // The last observed state as a number, one series per authority: 0 online,
            // 1 interruption, 2 offline. It changes only when the authority does (nobody
            // watching for a while is not a change): IdAuthorityFlapping counts it.
            record: 'country_id_type:idauth_state_observed:code',
            expr: |||
              max without (state) (
                  (country_id_type:idauth_state:latest{state="online"} * 0)
                or
                  (country_id_type:idauth_state:latest{state="interruption"} * 0 + 1)
                or
                  (country_id_type:idauth_state:latest{state="offline"} * 0 + 2)
              )
            |||,
          },
          {
            // The same for dashboards, with 3 (unknown) when nothing was observed within
            // the exporter's max_data_age.
            record: 'country_id_type:idauth_state:code',
            expr: |||
              (
                  country_id_type:idauth_state_observed:code
                    unless
                  (time() - max without (state) (country_id_type:idauth_state:latest) > %(maxAge)d)
              )
                or
              (country_id_type:idauth_state_observed:code * 0 + 3)
            ||| % { maxAge: c.maxDataAgeSeconds },
          },
          {
            // The success rates of the replica with the newest data.
            record: 'country_id_type:idauth_success_rate_10m:latest',
            expr: |||
              max %(replicas)s (
                  idauth_success_rate_10m{%(sel)s}
                and
                  (%(observed)s == ignoring (%(replicaList)s) group_left () max %(replicas)s (%(observed)s))
              )
            ||| % { replicas: replicas, replicaList: utils.labelList(c.replicaLabels), sel: sel, observed: std.stripChars(observedAt, '\n') },
          },
          {
            record: 'country_id_type:idauth_success_rate_1h:latest',
            expr: |||
              max %(replicas)s (
                  idauth_success_rate_1h{%(sel)s}
                and
                  (%(observed)s == ignoring (%(replicaList)s) group_left () max %(replicas)s (%(observed)s))
              )
            ||| % { replicas: replicas, replicaList: utils.labelList(c.replicaLabels), sel: sel, observed: std.stripChars(observedAt, '\n') },
          },
          {
            // 1 while the authority is online, 0 while it is not; no value while unknown.
            record: 'country_id_type:idauth_state_online:bool',
            expr: '(country_id_type:idauth_state:code < 3) == bool 0',
          },
          {
            // Share of one replica's polls that failed over 30 minutes.
            record: 'instance:idauth_poll_failures:ratio_rate30m',
            expr: |||
              sum without (%(auth)s, reason) (increase(idauth_poll_failures_total{%(sel)s}[30m]))
                /
              sum without (%(auth)s) (increase(idauth_polls_total{%(sel)s}[30m]))
            ||| % { auth: authority, sel: sel },
          },
          {
            // The newest successful poll of any replica of a deployment (job, cluster, ...).
            record: 'job:idauth_last_poll_success_timestamp_seconds:max',
            expr: 'max %s (clamp_max(idauth_last_poll_success_timestamp_seconds{%s}, time()))' % [deployment, sel],
          },
          {
            // Since when a deployment has been blind (IdAuthExporterBlind): the newest
            // successful poll of any replica, remembered (this rule's own last value), so
            // that it survives restarts and crash loops (a crashing process serves no poll
            // and a heartbeat reset to its start); moved to now while nobody could be
            // scraped for `exporterDownForSeconds` or the deployment has no target at all
            // (IdAuthExporterDown speaks then, and the clock starts again when it is back);
            // now, for a deployment seen for the first time. Kept while the deployment has
            // had a target within `memorySeconds`.
            record: 'job:idauth_blind_since:timestamp_seconds',
            expr: |||
              (
                  max without (blind_source) (
                      job:idauth_last_poll_success_timestamp_seconds:max
                    or
                      label_replace(last_over_time(job:idauth_blind_since:timestamp_seconds[%(memory)s]), "blind_source", "remembered", "", "")
                    or
                      label_replace((max %(replicas)s (max_over_time(up{%(sel)s}[%(down)s])) == 0) * 0 + time(), "blind_source", "down", "", "")
                    or
                      label_replace((group %(replicas)s (present_over_time(up{%(sel)s}[%(memory)s])) unless group %(replicas)s (up{%(sel)s})) * 0 + time(), "blind_source", "gone", "", "")
                  )
                or
                  group %(replicas)s (up{%(sel)s}) * 0 + time()
              )
                and
              group %(replicas)s (present_over_time(up{%(sel)s}[%(memory)s]))
            ||| % { memory: memory, replicas: replicas, sel: sel, down: utils.duration(c.exporterDownForSeconds) },
          },
        ],
      },
      {
        // Long look-backs, evaluated less often.
        name: 'idauth.availability',
        interval: '5m',
        rules: [
          {
            // Share of the day (and week) each authority was online, while its state was known.
            record: 'country_id_type:idauth_availability:ratio_1d',
            expr: 'avg_over_time(country_id_type:idauth_state_online:bool[1d])',
          },
          {
            record: 'country_id_type:idauth_availability:ratio_7d',
            expr: 'avg_over_time(country_id_type:idauth_state_online:bool[7d])',
          },
        ],
      },
    ],
  },
}

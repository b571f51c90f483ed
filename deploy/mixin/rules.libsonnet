// Recording rules. Every rule about an authority aggregates away the labels that differ
// between replicas (instance, pod, ...) and keeps only `groupLabels` and the authority's
// labels, so N replicas, rollouts and restarts give one series per authority.
//
// How an authority's state is followed across replicas and restarts: every observation is
// stamped with the provider's own time of the check it reports (`last_checked`, the same
// on every replica; the exporter's poll time where the provider gives none). The latest
// observation wins, whichever replica made it, and it is remembered for `memorySeconds`,
// so a replica that restarts, dies or serves stale data changes nothing until some
// replica observes something newer. Since when is read from the exporter, which keeps it
// across restarts, and remembered the same way.
local utils = import 'lib/utils.libsonnet';

{
  local c = $._config,
  local sel = c.selector,
  local authority = utils.labelList(c.groupLabels + c.authorityLabels),
  local group = utils.labelList(c.groupLabels),
  local memory = utils.duration(c.memorySeconds),

  prometheusRules+:: {
    groups+: [
      {
        name: 'idauth.rules',
        rules: [
          {
            // The provider time of the newest check that some replica reports in each
            // state (online, interruption, offline), now.
            record: 'country_id_type_state:idauth_observation_timestamp_seconds:max',
            expr: |||
              max by (%(authority)s, state) (
                  (idauth_state{%(sel)s, state!="unknown"} == 1)
                * ignoring (state) group_left ()
                  (idauth_last_checked_timestamp_seconds{%(sel)s} or idauth_last_poll_success_timestamp_seconds{%(sel)s})
              )
            ||| % { authority: authority, sel: sel },
          },
          {
            // The same, remembered: bridges restarts, rollouts, dead replicas and stale data.
            record: 'country_id_type_state:idauth_observation_timestamp_seconds:latest',
            expr: 'max_over_time(country_id_type_state:idauth_observation_timestamp_seconds:max[%s])' % memory,
          },
          {
            // The authority's state as last observed (one series, labelled with the state;
            // the value is the provider time of that observation).
            record: 'country_id_type:idauth_state:latest',
            expr: |||
              country_id_type_state:idauth_observation_timestamp_seconds:latest
                == on (%(authority)s) group_left ()
              max by (%(authority)s) (country_id_type_state:idauth_observation_timestamp_seconds:latest)
            ||| % { authority: authority },
          },
          {
            // What the replicas say, now: per authority and observed state, the earliest
            // `idauth_state_since_timestamp_seconds` among the replicas that currently show
            // that state. The exporter serves the start of its current run of the state in
            // provider time (the `last_checked` of the run's first check), the same on every
            // replica and across restarts; a replica that lost its store, or started later,
            // reports a later start, so the earliest wins. A replica whose data is stale
            // shows `unknown`, with a since of its own (when its data went stale): left out.
            record: 'country_id_type_state:idauth_state_since_timestamp_seconds:min',
            expr: |||
              min by (%(authority)s, state) (
                  (idauth_state{%(sel)s, state!="unknown"} == 1)
                * ignoring (state) group_left ()
                  idauth_state_since_timestamp_seconds{%(sel)s}
              )
            ||| % { authority: authority, sel: sel },
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
            // newest check remembered in any other state (0 where there is none): a run is
            // always later than the last check of another state, so an earlier run of the
            // same state (offline this morning, online since, offline again) never counts.
            // Where neither is left, the newest check in the state stands in (a replica
            // that missed the other state's check reports a start from before it), and
            // being a minimum, it stays at the first such check.
            // No subquery: one range, over one recorded series per authority.
            record: 'country_id_type:idauth_state_since:timestamp_seconds',
            expr: |||
              min by (%(authority)s, state) (
                  (
                      (
                          country_id_type_state:idauth_state_since_timestamp_seconds:min
                        or
                          label_replace(last_over_time(country_id_type:idauth_state_since:timestamp_seconds[%(memory)s]), "since_source", "remembered", "", "")
                      )
                        and on (%(authority)s, state)
                      country_id_type:idauth_state:latest
                  )
                    > on (%(authority)s) group_left ()
                  max by (%(authority)s) (
                      country_id_type_state:idauth_observation_timestamp_seconds:latest
                        unless on (%(authority)s, state)
                      country_id_type:idauth_state:latest
                    or
                      country_id_type:idauth_state:latest * 0
                  )
                or
                  country_id_type:idauth_state:latest
              )
            ||| % { authority: authority, memory: memory },
          },
          {
            // The last observed state as a number, one series per authority: 0 online,
            // 1 interruption, 2 offline. It changes only when the authority does (nobody
            // watching for a while is not a change): IdAuthorityFlapping counts it.
            record: 'country_id_type:idauth_state_observed:code',
            expr: |||
              max by (%(authority)s) (
                  (country_id_type:idauth_state:latest{state="online"} * 0)
                or
                  (country_id_type:idauth_state:latest{state="interruption"} * 0 + 1)
                or
                  (country_id_type:idauth_state:latest{state="offline"} * 0 + 2)
              )
            ||| % { authority: authority },
          },
          {
            // The same for dashboards, with 3 (unknown) when nothing was observed within
            // the exporter's max_data_age.
            record: 'country_id_type:idauth_state:code',
            expr: |||
              (
                  country_id_type:idauth_state_observed:code
                    unless on (%(authority)s)
                  (time() - max by (%(authority)s) (country_id_type:idauth_state:latest) > %(maxAge)d)
              )
                or on (%(authority)s)
              (country_id_type:idauth_state_observed:code * 0 + 3)
            ||| % { authority: authority, maxAge: c.maxDataAgeSeconds },
          },
          {
            // The success rates of the replica with the newest data.
            record: 'country_id_type:idauth_success_rate_10m:latest',
            expr: |||
              max by (%(authority)s) (
                  idauth_success_rate_10m{%(sel)s}
                and
                  (idauth_last_checked_timestamp_seconds{%(sel)s} == on (%(authority)s) group_left () max by (%(authority)s) (idauth_last_checked_timestamp_seconds{%(sel)s}))
              )
            ||| % { authority: authority, sel: sel },
          },
          {
            record: 'country_id_type:idauth_success_rate_1h:latest',
            expr: |||
              max by (%(authority)s) (
                  idauth_success_rate_1h{%(sel)s}
                and
                  (idauth_last_checked_timestamp_seconds{%(sel)s} == on (%(authority)s) group_left () max by (%(authority)s) (idauth_last_checked_timestamp_seconds{%(sel)s}))
              )
            ||| % { authority: authority, sel: sel },
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
            ||| % { auth: utils.labelList(c.authorityLabels), sel: sel },
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

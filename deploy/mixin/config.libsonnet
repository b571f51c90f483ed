// The settings of the idauth-exporter mixin. Override any of them when you import it:
//
//   (import 'mixin.libsonnet') + { _config+:: { replicaLabels+: ['pod_ip'] } }
//
// Durations are in seconds so that thresholds can be derived from them; the rules print
// them as Prometheus durations.
{
  _config+:: {
    // Selects the exporter's series (and its `up` series) in every rule and panel.
    selector: 'job="idauth-exporter"',
    // Labels that differ between the replicas of one deployment: every rule aggregates them
    // away (`without (...)`), and keeps every other label, as kubernetes-mixin does. So N
    // replicas watching one authority give one alert, while the labels you add yourself
    // (cluster, env, region, namespace, ...: target labels, external labels of a global
    // ruler) stay on every alert and recording rule without being listed anywhere. Add a
    // label here if your relabelling puts another per-replica label on the series.
    replicaLabels: ['instance', 'pod', 'node', 'container', 'endpoint', 'service'],
    // Labels the dashboard offers as variables and shows in its legends (the rules keep
    // every label but replicaLabels whatever this says). Add 'cluster' when one Prometheus
    // (or a global ruler) sees several deployments.
    groupLabels: ['job'],
    // The labels that name an ID authority on the exporter's series.
    authorityLabels: ['country', 'id_type'],

    // The exporter's poll period: the period of `poll.schedule` (default every 10 minutes,
    // one minute after each of the provider's 10-minute windows).
    pollPeriodSeconds: 600,
    // The exporter's `poll.max_data_age` (default 30 minutes): older data is shown as
    // unknown, by the exporter and by the recording rules.
    maxDataAgeSeconds: 1800,
    // Look-back of gauges read with max_over_time: a failed scrape marks every series of a
    // target stale, and must not reset a `for:` timer. At least two scrape intervals.
    lookbackSeconds: 180,
    // How long the recording rules remember an authority's last observed state. A page
    // stays open while nobody observes the authority (every replica down, restarting or
    // serving stale data) for up to this long; the exporter-level alerts fire meanwhile.
    memorySeconds: 24 * 3600,

    // Consecutive polls that must report `offline` before IdAuthorityOffline pages.
    // 2 (the default): a single offline poll between online ones never pages, two in a
    // row page within about 13 minutes of the first. 1 pages on the first offline poll.
    offlineConfirmationPolls: 2,
    // Consecutive polls that must report something else than `offline` (online or
    // interruption) before an open IdAuthorityOffline resolves: hysteresis, counted in the
    // provider's checks like the confirmation. 2 (the default): an authority that comes back
    // for a single check between offline ones stays one incident, one page; a real
    // recovery resolves about 11 minutes after the first online poll. 1 resolves on the
    // first online poll (and pages again if the next one is offline).
    recoveryConfirmationPolls: 2,
    // Consecutive polls that must report `interruption` before IdAuthorityDegraded fires.
    interruptionConfirmationPolls: 3,
    // IdAuthorityFlapping: this many changes of state within the window.
    flappingChanges: 4,
    flappingWindowSeconds: 2 * 3600,
    // IdAuthorityStatusUnknown fires when every replica has shown the authority as
    // unknown for this long (after the exporter's own max_data_age when polls fail).
    unknownForSeconds: 600,
    // IdAuthorityDataStale: the provider's own last check of an authority is older than this.
    providerStaleSeconds: 1800,

    // IdAuthorityDataStale only fires while our own polls are fresh (a replica polled the
    // pair successfully within this long): when our poller stops, the provider is not to
    // blame (IdAuthExporterStalled or IdAuthExporterBlind say so).
    ownPollFreshSeconds: self.pollPeriodSeconds + 300,
    // A pair that no replica has served for this long, while the replicas serve other
    // pairs, was removed from the configuration (or from the provider's catalogue): the
    // rules forget it, its open alerts end (saying so, not as a recovery), and
    // IdAuthorityNoLongerWatched (info) says so until `unwatchedReportSeconds` after the
    // last replica served it.
    unwatchedAfterSeconds: 15 * 60,
    unwatchedReportSeconds: 3600,

    // IdAuthExporterDown and IdAuthExporterReplicaDown: scrapes failing for this long.
    exporterDownForSeconds: 600,
    // IdAuthExporterStalled: no poll cycle started for this long (two periods and 5 minutes).
    stalledAfterSeconds: 2 * self.pollPeriodSeconds + 300,
    // IdAuthExporterBlind: some replica can be scraped, yet no replica has completed a
    // successful poll for this long (counted from the last success, or from when the job
    // was last seen down or without targets, whichever is later). It survives crash loops
    // and restarts: it reads the last success of any replica, remembered by a recording
    // rule, not a per-process gauge.
    blindAfterSeconds: self.stalledAfterSeconds,
    // IdAuthExporterReplicaStalled waits this long, so that a stall of every replica (whose
    // heartbeats are a minute apart) never shows one replica stalled first.
    replicaStalledForSeconds: self.pollPeriodSeconds,
    // IdAuthExporterPollsFailing: the share of a replica's polls that failed over 30 minutes.
    pollFailureRatio: 0.5,
    // IdAuthExporterUnauthorized: no poll of any replica has succeeded, and some were
    // refused as unauthorized, for this long: a poll period and 2 minutes, so that two
    // cycles in a row were refused (a key fixed in between never pages).
    unauthorizedForSeconds: self.pollPeriodSeconds + 120,
    // IdAuthExporterDiscoveryFailing: no replica has read the provider's catalogue
    // (discovery:) for this long. The catalogue changes over weeks; a day of failures is
    // worth a look, not a page.
    discoveryFailingAfterSeconds: 24 * 3600,

    // The webhooks (notify.webhooks). Every replica sends every change of state itself, and
    // receivers deduplicate by webhook-id, so a receiver has a change when any replica
    // delivered it.
    // IdAuthWebhookFailing: every replica has had a delivery to the webhook waiting this long
    // (idauth_webhook_oldest_pending_age_seconds): the receiver has not got it from anybody.
    // Nothing is lost yet (the outbox retries for 24 hours or more); an hour is worth a look,
    // not a page.
    webhookFailingAfterSeconds: 3600,
    // IdAuthWebhookReplicaFailing: one replica has waited that long while another has not.
    // It waits this long first, because replicas see the same change up to a poll period
    // apart: when every replica fails, one crosses the threshold that much before the others,
    // and must not show as failing alone in between.
    webhookReplicaFailingForSeconds: self.pollPeriodSeconds,
    // IdAuthWebhookEventsLost: every replica gave up on some delivery to the webhook (expired
    // after its retries, or its outbox overflowed) within this window. Replicas give up on
    // the same change at different times (each saw it at its own poll and retries on its own
    // schedule), so the window must cover that spread; the alert fires for this long after
    // the loss.
    webhookLostWindowSeconds: 6 * 3600,

    // Where each alert's runbook_url points: %s is the alert's name in lower case.
    runbookURLPattern: 'https://github.com/idauth-exporter/idauth-exporter/blob/main/docs/runbook.md#%s',
    // Labels added to every alert (for example a team label your Alertmanager routes on).
    alertLabels: {},
    // Labels on the rendered PrometheusRule object: kube-prometheus-stack's Prometheus only
    // loads rules whose labels match its ruleSelector (by default `release: <its release>`).
    prometheusRuleLabels: {
      'app.kubernetes.io/name': 'idauth-exporter',
      role: 'alert-rules',
    },

    // The Grafana dashboard.
    dashboardUid: 'idauth-overview',
    dashboardTitle: 'ID authorities (Smile ID)',
    dashboardTags: ['idauth', 'smile-id', 'kyc'],
    dashboardRefresh: '1m',
  },
}

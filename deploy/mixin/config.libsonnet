// The settings of the idauth-exporter mixin. Override any of them when you import it:
//
//   (import 'mixin.libsonnet') + { _config+:: { groupLabels: ['cluster', 'job'] } }
//
// Durations are in seconds so that thresholds can be derived from them; the rules print
// them as Prometheus durations.
{
  _config+:: {
    // Selects the exporter's series (and its `up` series) in every rule and panel.
    selector: 'job="idauth-exporter"',
    // Labels that tell one deployment of watchers from another: kept on every authority
    // alert and recording rule, and compared by the Alertmanager inhibitions. Never put a
    // label here that differs between replicas (instance, pod): N replicas watching one
    // authority must give one alert. Add 'cluster' (or 'namespace') when one Prometheus
    // sees several deployments.
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

    // IdAuthExporterDown and IdAuthExporterReplicaDown: scrapes failing for this long.
    exporterDownForSeconds: 600,
    // IdAuthExporterStalled: no poll cycle started for this long (two periods and 5 minutes).
    stalledAfterSeconds: 2 * self.pollPeriodSeconds + 300,
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

// The Grafana dashboard "ID authorities (Smile ID)" (uid `idauth-overview`).
//
// Everything about an authority is read from the recording rules of rules.libsonnet: one
// series per authority whatever the number of replicas, rollouts and restarts, so no row or
// line doubles after a pod change. Only the "Exporter replicas" row shows per-replica
// series (by `instance`): scrapes, poll cycles, polls, failures and request durations.
//
// Template variables: datasource, cluster (hidden unless `cluster` is one of
// `_config.groupLabels`), one per other group label (`job` by default), instance (the
// replica panels only), country and id_type. Every label variable has an "All" value of
// `.*`, which also matches series without the label, so the queries work with or
// without a cluster label.
local d = import 'lib/dashboard.libsonnet';
local utils = import 'lib/utils.libsonnet';

{
  local c = $._config,
  local groupLabels = [l for l in c.groupLabels if l != 'cluster'],
  local filterLabels = ['cluster'] + groupLabels,
  local authorityLabels = c.groupLabels + c.authorityLabels,
  local by = utils.labelList(authorityLabels),

  local matchers(labels) = std.join(', ', ['%s=~"$%s"' % [l, l] for l in labels]),
  // Series of the recording rules, one per authority.
  local authority = matchers(filterLabels + c.authorityLabels),
  // The exporter's own series of an authority (every replica's).
  local exporterAuthority = std.join(', ', [c.selector, matchers(filterLabels + c.authorityLabels)]),
  // The exporter's series of the selected replicas.
  local replica = std.join(', ', [c.selector, matchers(filterLabels + ['instance'])]),
  // ALERTS: exporter-level alerts have no country, id_type or instance label.
  local alertMatchers = std.join(', ', [
    'alertstate="firing"',
    'alertname=~"IdAuth.*"',
    matchers(filterLabels),
  ] + ['%s=~"$%s|"' % [l, l] for l in ['instance'] + c.authorityLabels]),

  local legend = std.join(' ', ['{{%s}}' % l for l in c.authorityLabels + [l for l in c.groupLabels if l != 'job']]),
  local capitalized(l) = std.asciiUpper(l[0]) + l[1:],
  local perAuthority(expr) = 'max by (%s) (%s)' % [by, expr],

  local stalePoll = c.pollPeriodSeconds + c.pollPeriodSeconds / 2,
  local successThresholds = d.thresholds('red', [[0.5, 'orange'], [0.91, 'green']]),
  local availabilityThresholds = d.thresholds('red', [[0.9, 'orange'], [0.99, 'green']]),

  // Severity rank of a state code, worst first: offline 3, unknown 2, interruption 1, online 0.
  local rank(code) = '(%(c)s == 2) + 1 or (%(c)s == 3) - 1 or %(c)s' % { c: code },
  local rankMapping = d.valueMapping([
    [3, 'offline', 'red'],
    [2, 'unknown', '#8e8e8e'],
    [1, 'interruption', 'orange'],
    [0, 'online', 'green'],
  ]),
  local codeMapping = d.valueMapping([
    [0, 'online', 'green'],
    [1, 'interruption', 'orange'],
    [2, 'offline', 'red'],
    [3, 'unknown', '#8e8e8e'],
  ]),

  // The runbook of each alert of the mixin, as a `runbook_url` label on its ALERTS series.
  local alertRules = [r for g in $.prometheusAlerts.groups for r in g.rules if std.objectHas(r, 'alert')],
  local withRunbooks(expr) = std.foldl(
    function(e, r) 'label_replace(%s, "runbook_url", "%s", "alertname", "%s")' % [e, r.annotations.runbook_url, r.alert],
    alertRules,
    expr,
  ),

  local stateCount(title, code, colour, description, x) = d.stat(
    title,
    description,
    [x, 0, 4, 4],
    [d.target('count(country_id_type:idauth_state:code{%s} == %d) or vector(0)' % [authority, code], title)],
    d.thresholds('green', [[1, colour]]),
  ),

  local labelVariable(name, label, query, hide=0) = {
    name: name,
    label: label,
    type: 'query',
    datasource: d.datasource,
    query: query,
    refresh: 2,
    regex: '',
    sort: 1,
    multi: true,
    includeAll: true,
    allValue: '.*',
    hide: hide,
    skipUrlSync: false,
    options: [],
    current: { selected: true, text: ['All'], value: ['$__all'] },
  },

  local panels = [
    stateCount('Offline', 2, 'red', 'Authorities (country, ID type) that Smile ID last showed offline (success rate <= 50%). Green at 0, red from 1.', 0),
    stateCount('Unknown', 3, '#8e8e8e', 'Authorities whose state is unknown: no replica observed a check within the exporter\'s max_data_age (%s). Green at 0, grey from 1.' % utils.duration(c.maxDataAgeSeconds), 4),
    stateCount('Interruption', 1, 'orange', 'Authorities that Smile ID last showed with an interruption (success rate between 50% and 91%). Green at 0, orange from 1.', 8),
    d.stat(
      'Online',
      'Authorities that Smile ID last showed online (success rate >= 91%).',
      [12, 0, 4, 4],
      [d.target('count(country_id_type:idauth_state:code{%s} == 0) or vector(0)' % authority, 'Online')],
      d.thresholds('text', [[1, 'green']]),
    ),
    d.stat(
      'Replicas',
      'Exporter replicas scraped successfully (up) and failing their scrapes (down). Nobody watches the authorities when no replica is up.',
      [16, 0, 4, 4],
      [
        d.target('sum(up{%s}) or vector(0)' % replica, 'up'),
        d.target('count(up{%s} == 0) or vector(0)' % replica, 'down'),
      ],
      d.thresholds('text'),
      textMode='value_and_name',
    ) {
      fieldConfig+: {
        overrides: [
          d.override('up', { thresholds: d.thresholds('red', [[1, 'green']]) }),
          d.override('down', { thresholds: d.thresholds('green', [[1, 'orange']]) }),
        ],
      },
    },
    d.stat(
      'Firing alerts',
      'IdAuth* alerts firing now, by severity. The table below lists them with their runbooks.',
      [20, 0, 4, 4],
      [
        d.target('count(ALERTS{%s, severity="critical"}) or vector(0)' % alertMatchers, 'critical'),
        d.target('count(ALERTS{%s, severity="warning"}) or vector(0)' % alertMatchers, 'warning'),
      ],
      d.thresholds('green'),
      textMode='value_and_name',
    ) {
      fieldConfig+: {
        overrides: [
          d.override('critical', { thresholds: d.thresholds('green', [[1, 'red']]) }),
          d.override('warning', { thresholds: d.thresholds('green', [[1, 'orange']]) }),
        ],
      },
    },

    d.table(
      'Firing alerts',
      'The IdAuth* alerts firing now (Prometheus ALERTS), critical first. Click an alert name or its runbook to open the runbook. Authority alerts are one per authority, whatever the number of replicas; webhook alerts one per webhook.',
      [0, 4, 24, 6],
      [d.target(
        withRunbooks('max by (alertname, severity, %s, instance, webhook) (ALERTS{%s})' % [by, alertMatchers]),
        instant=true,
        format='table',
      )],
      [['severity', 'Severity'], ['alertname', 'Alert']]
      + [['country', 'Country'], ['id_type', 'ID type']] + [[l, capitalized(l)] for l in c.groupLabels]
      + [['instance', 'Replica'], ['webhook', 'Webhook'], ['runbook_url', 'Runbook']],
      [],
      hidden=['Value', 'Value #A'],
      overrides=[
        d.override('Severity', {
          mappings: d.valueMapping([['critical', 'critical', 'red'], ['warning', 'warning', 'orange'], ['info', 'info', 'blue']]),
          'custom.cellOptions': { type: 'color-text' },
        }),
        d.override('Alert', {
          links: [{ title: 'Runbook of ${__data.fields.Alert}', url: '${__data.fields.Runbook}', targetBlank: true }],
        }),
        d.override('Runbook', {
          links: [{ title: 'Open the runbook', url: '${__value.raw}', targetBlank: true }],
        }),
      ],
      sortBy=[{ displayName: 'Severity', desc: false }],
    ) { fieldConfig+: { defaults+: { noValue: 'No IdAuth alert is firing' } } },

    d.table(
      'Current state',
      'One row per authority, worst first (offline, unknown, interruption, online). "Since" is when the current state began: the provider\'s time of the first check of its current run, as the exporter keeps it across restarts, the earliest any replica reports, remembered while nobody observes; "For" is how long ago that was. "Data age" is the time since the newest check some replica reports (unknown after %(maxAge)s; "Since" then refers to the last state observed). Success rates are Smile ID\'s own, from the replica with the newest data. "Last poll" is ok when some replica\'s last poll of the authority succeeded.' % { maxAge: utils.duration(c.maxDataAgeSeconds) },
      [0, 10, 24, 10],
      [
        d.target(perAuthority(rank('country_id_type:idauth_state:code{%s}' % authority)), instant=true, format='table'),
        d.target('1000 * ' + perAuthority('country_id_type:idauth_state_since:timestamp_seconds{%s}' % authority), instant=true, format='table'),
        d.target('time() - ' + perAuthority('country_id_type:idauth_state_since:timestamp_seconds{%s}' % authority), instant=true, format='table'),
        d.target('time() - ' + perAuthority('country_id_type:idauth_state:latest{%s}' % authority), instant=true, format='table'),
        d.target(perAuthority('country_id_type:idauth_success_rate_10m:latest{%s}' % authority), instant=true, format='table'),
        d.target(perAuthority('country_id_type:idauth_success_rate_1h:latest{%s}' % authority), instant=true, format='table'),
        d.target(perAuthority('idauth_poll_success{%s}' % exporterAuthority), instant=true, format='table'),
      ],
      [['country', 'Country'], ['id_type', 'ID type']] + [[l, capitalized(l)] for l in c.groupLabels],
      ['State', 'Since', 'For', 'Data age', 'Success 10m', 'Success 1h', 'Last poll'],
      overrides=[
        d.override('State', {
          mappings: rankMapping,
          'custom.cellOptions': { type: 'color-background', mode: 'basic' },
        }),
        d.override('Since', { unit: 'dateTimeAsIso' }),
        d.override('For', { unit: 'dtdurations' }),
        d.override('Data age', {
          unit: 'dtdurations',
          thresholds: d.thresholds('text', [[stalePoll, 'orange'], [c.maxDataAgeSeconds, 'red']]),
          'custom.cellOptions': { type: 'color-text' },
        }),
      ] + [
        d.override(rate, {
          unit: 'percentunit',
          decimals: 1,
          min: 0,
          max: 1,
          thresholds: successThresholds,
          'custom.cellOptions': { type: 'color-text' },
        })
        for rate in ['Success 10m', 'Success 1h']
      ] + [
        d.override('Last poll', {
          mappings: d.valueMapping([[1, 'ok', 'green'], [0, 'failed', 'red']]),
          'custom.cellOptions': { type: 'color-text' },
        }),
      ],
      sortBy=[{ displayName: 'State', desc: true }],
    ),

    d.stateTimeline(
      'State over time',
      'The state of each authority as last observed by any replica (recording rule country_id_type:idauth_state:code): one row per authority, whatever the replicas.',
      [0, 20, 24, 9],
      [d.target('country_id_type:idauth_state:code{%s}' % authority, legend)],
      codeMapping,
    ) { fieldConfig+: { defaults+: { min: 0, max: 3 } }, options+: { showValue: 'never', legend+: { showLegend: true } } },

    d.timeseries(
      'Success rate, last 10 minutes',
      'Smile ID\'s success rate for requests to each authority, from the replica with the newest data. Online at >= 91%, offline at <= 50%.',
      [0, 29, 12, 8],
      [d.target('country_id_type:idauth_success_rate_10m:latest{%s}' % authority, legend)],
      'percentunit',
      max=1,
      thresholds=successThresholds,
      thresholdsStyle='line+area',
    ) { fieldConfig+: { defaults+: { decimals: 1 } } },
    d.timeseries(
      'Success rate, last hour',
      'Smile ID\'s success rate over the last hour, from the replica with the newest data. Online at >= 91%, offline at <= 50%.',
      [12, 29, 12, 8],
      [d.target('country_id_type:idauth_success_rate_1h:latest{%s}' % authority, legend)],
      'percentunit',
      max=1,
      thresholds=successThresholds,
      thresholdsStyle='line+area',
    ) { fieldConfig+: { defaults+: { decimals: 1 } } },

    d.panel(
      'bargauge',
      'Availability over the selected range',
      'Share of the selected time range during which each authority was online, while its state was known (recording rule country_id_type:idauth_state_online:bool).',
      [0, 37, 12, 9],
      [d.target('avg_over_time(country_id_type:idauth_state_online:bool{%s}[$__range])' % authority, legend, instant=true)],
    ) {
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          min: 0,
          max: 1,
          decimals: 2,
          color: { mode: 'thresholds' },
          thresholds: availabilityThresholds,
          mappings: [],
        },
        overrides: [],
      },
      options: {
        displayMode: 'gradient',
        orientation: 'horizontal',
        showUnfilled: true,
        valueMode: 'color',
        namePlacement: 'auto',
        sizing: 'auto',
        minVizHeight: 16,
        minVizWidth: 8,
        maxVizHeight: 300,
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      },
    },
    d.table(
      'Availability, last day and last 7 days',
      'Share of time each authority was online, while its state was known (recording rules country_id_type:idauth_availability:ratio_1d and ratio_7d), least available first.',
      [12, 37, 12, 9],
      [
        d.target(perAuthority('country_id_type:idauth_availability:ratio_1d{%s}' % authority), instant=true, format='table'),
        d.target(perAuthority('country_id_type:idauth_availability:ratio_7d{%s}' % authority), instant=true, format='table'),
      ],
      [['country', 'Country'], ['id_type', 'ID type']] + [[l, capitalized(l)] for l in c.groupLabels],
      ['Last day', 'Last 7 days'],
      overrides=[
        d.override(name, {
          unit: 'percentunit',
          decimals: 2,
          min: 0,
          max: 1,
          thresholds: availabilityThresholds,
          color: { mode: 'thresholds' },
          'custom.cellOptions': { type: 'gauge', mode: 'basic', valueDisplayMode: 'text' },
        })
        for name in ['Last day', 'Last 7 days']
      ],
      sortBy=[{ displayName: 'Last 7 days', desc: false }],
    ),

    d.timeseries(
      'Time since a replica last polled each authority successfully',
      'Per authority: time since any replica last got a usable answer from Smile ID for it. Orange after one and a half poll periods (%s), red after max_data_age (%s), when the state turns unknown.' % [utils.duration(stalePoll), utils.duration(c.maxDataAgeSeconds)],
      [0, 46, 24, 8],
      [d.target('time() - ' + perAuthority('idauth_last_poll_success_timestamp_seconds{%s}' % exporterAuthority), legend)],
      's',
      thresholds=d.thresholds('green', [[stalePoll, 'orange'], [c.maxDataAgeSeconds, 'red']]),
      thresholdsStyle='dashed',
    ),

    {
      type: 'row',
      title: 'Exporter replicas',
      collapsed: false,
      gridPos: { x: 0, y: 54, w: 24, h: 1 },
      datasource: d.datasource,
      panels: [],
    },

    d.stateTimeline(
      'Replicas up',
      'Whether Prometheus scrapes each exporter replica (up). One replica down while another is up is a warning; none up is critical.',
      [0, 55, 12, 7],
      [d.target('up{%s}' % replica, '{{instance}}')],
      d.valueMapping([[1, 'up', 'green'], [0, 'down', 'red']]),
    ) { options+: { showValue: 'never', legend+: { showLegend: true } } },
    d.stat(
      'Heartbeat age',
      'Per replica: time since it last ran a poll cycle. Orange after %s, red after %s (IdAuthExporterStalled).' % [utils.duration(c.pollPeriodSeconds + 300), utils.duration(c.stalledAfterSeconds)],
      [12, 55, 12, 7],
      [d.target('time() - idauth_poll_cycle_last_run_timestamp_seconds{%s}' % replica, '{{instance}}')],
      d.thresholds('green', [[c.pollPeriodSeconds + 300, 'orange'], [c.stalledAfterSeconds, 'red']]),
      unit='s',
      textMode='value_and_name',
    ),

    d.timeseries(
      'Polls per hour',
      'Per replica: requests to Smile ID per hour.',
      [0, 62, 12, 8],
      [d.target('3600 * sum by (instance) (rate(idauth_polls_total{%s}[$__rate_interval]))' % replica, '{{instance}}')],
      'suffix: polls/h',
      legendCalcs=['mean', 'max', 'lastNotNull'],
    ),
    d.timeseries(
      'Failed polls per hour, by reason',
      'Per replica: failed requests to Smile ID per hour, by reason.',
      [12, 62, 12, 8],
      [d.target('3600 * sum by (instance, reason) (rate(idauth_poll_failures_total{%s}[$__rate_interval]))' % replica, '{{instance}}: {{reason}}')],
      'suffix: polls/h',
      legendCalcs=['mean', 'max', 'lastNotNull'],
    ),

    d.timeseries(
      'Request duration',
      'Per replica: quantiles of the time one request to Smile ID takes, retries included (idauth_poll_duration_seconds).',
      [0, 70, 12, 8],
      [
        d.target('histogram_quantile(%s, sum by (instance, le) (rate(idauth_poll_duration_seconds_bucket{%s}[$__rate_interval])))' % [q[1], replica], '{{instance}} %s' % q[0])
        for q in [['p50', '0.5'], ['p90', '0.9'], ['p99', '0.99']]
      ],
      's',
    ),
    d.timeseries(
      'Share of polls failing, last 30 minutes',
      'Per replica: failed polls / polls over 30 minutes (recording rule instance:idauth_poll_failures:ratio_rate30m). IdAuthExporterPollsFailing fires above %d%%.' % (100 * c.pollFailureRatio),
      [12, 70, 12, 8],
      [d.target('instance:idauth_poll_failures:ratio_rate30m{%s}' % replica, '{{instance}}')],
      'percentunit',
      max=1,
      thresholds=d.thresholds('green', [[c.pollFailureRatio, 'red']]),
      thresholdsStyle='dashed',
    ),

    // The webhooks (notify.webhooks): every replica sends every change itself, so the
    // outboxes are shown per replica; a receiver has a change once any replica delivered it.
    {
      type: 'row',
      title: 'Webhooks (outboxes per replica)',
      collapsed: false,
      gridPos: { x: 0, y: 78, w: 24, h: 1 },
      datasource: d.datasource,
      panels: [],
    },
    d.timeseries(
      'Webhook deliveries per hour, by result',
      'Per webhook: delivery attempts per hour by result, summed over the selected replicas (each replica delivers every change itself, and retries failed ones): success, rejected (a non-2xx answer, such as 401 or 403 for a wrong secret), timeout, unreachable (connection refused, DNS, TLS).',
      [0, 79, 8, 8],
      [d.target('3600 * sum by (webhook, result) (rate(idauth_webhook_deliveries_total{%s}[$__rate_interval]))' % replica, '{{webhook}}: {{result}}')],
      'suffix: deliveries/h',
      legendCalcs=['max', 'lastNotNull'],
    ),
    d.timeseries(
      'Webhook deliveries waiting',
      'Per webhook and replica: changes of state waiting in the outbox (delivery failed, to be retried, for 24 hours or more).',
      [8, 79, 8, 8],
      [d.target('idauth_webhook_pending{%s}' % replica, '{{webhook}} on {{instance}}')],
      'none',
      legendCalcs=['max', 'lastNotNull'],
    ),
    d.timeseries(
      'Oldest waiting webhook delivery',
      'Per webhook and replica: how long the oldest waiting change has waited (0 when none waits). IdAuthWebhookFailing fires when every replica has waited longer than %s; IdAuthWebhookReplicaFailing when one replica has, while another has not (the receiver most likely got the change from that one).' % utils.duration(c.webhookFailingAfterSeconds),
      [16, 79, 8, 8],
      [d.target('idauth_webhook_oldest_pending_age_seconds{%s}' % replica, '{{webhook}} on {{instance}}')],
      's',
      thresholds=d.thresholds('green', [[c.webhookFailingAfterSeconds, 'red']]),
      thresholdsStyle='dashed',
      legendCalcs=['max', 'lastNotNull'],
    ),
  ],

  grafanaDashboards+:: {
    'idauth-overview.json': {
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      description: 'Availability of the government ID authorities behind Smile ID, from idauth-exporter: one series per authority whatever the number of replicas (the recording rules of the idauth-exporter mixin).',
      editable: true,
      fiscalYearStartMonth: 0,
      graphTooltip: 1,
      id: null,
      links: [],
      liveNow: false,
      panels: [panels[i] { id: i + 1 } for i in std.range(0, std.length(panels) - 1)],
      refresh: c.dashboardRefresh,
      schemaVersion: 39,
      tags: c.dashboardTags + ['prometheus'],
      templating: {
        list: [
          {
            name: 'datasource',
            label: 'Data source',
            type: 'datasource',
            query: 'prometheus',
            current: { selected: false, text: 'Prometheus', value: 'prometheus' },
            hide: 0,
            includeAll: false,
            multi: false,
            options: [],
            refresh: 1,
            regex: '',
            skipUrlSync: false,
          },
          // Shown when the authorities are told apart by cluster (groupLabels has 'cluster');
          // hidden otherwise, with its All value (.*) that matches series without the label.
          labelVariable('cluster', 'Cluster', 'label_values(up{%s}, cluster)' % c.selector, hide=if std.member(c.groupLabels, 'cluster') then 0 else 2),
        ] + [
          labelVariable(
            groupLabels[i],
            capitalized(groupLabels[i]),
            'label_values(up{%s}, %s)' % [std.join(', ', [c.selector, matchers(['cluster'] + groupLabels[:i])]), groupLabels[i]],
          )
          for i in std.range(0, std.length(groupLabels) - 1)
        ] + [
          labelVariable('instance', 'Replica', 'label_values(up{%s}, instance)' % std.join(', ', [c.selector, matchers(filterLabels)])),
          labelVariable('country', 'Country', 'label_values(country_id_type:idauth_state:code{%s}, country)' % matchers(filterLabels)),
          labelVariable('id_type', 'ID type', 'label_values(country_id_type:idauth_state:code{%s}, id_type)' % matchers(filterLabels + ['country'])),
        ],
      },
      time: { from: 'now-6h', to: 'now' },
      timepicker: {},
      timezone: '',
      title: c.dashboardTitle,
      uid: c.dashboardUid,
      version: 1,
      weekStart: '',
    },
  },
}

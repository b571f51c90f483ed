// The idauth-exporter monitoring mixin: alerts, recording rules and a Grafana dashboard,
// in the layout of node-mixin and kubernetes-mixin. Import it and override `_config`
// (see config.libsonnet) to change selectors, thresholds and labels:
//
//   local idauth = (import 'mixin.libsonnet') + { _config+:: { groupLabels: ['cluster', 'job'] } };
//   { 'alerts.yaml': std.manifestYamlDoc(idauth.prometheusAlerts) }
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'rules.libsonnet') +
(import 'dashboards.libsonnet')

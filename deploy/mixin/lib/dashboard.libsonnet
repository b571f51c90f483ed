// Small builders for the Grafana dashboard of the mixin (plain jsonnet: no grafonnet, so
// nothing has to be vendored). Every panel and query reads from the `${datasource}`
// template variable.
{
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // A PromQL query. `instant` queries are for tables, bar gauges and stats of "now".
  target(expr, legend='__auto', refId='A', instant=false, format='time_series'):: {
    datasource: $.datasource,
    refId: refId,
    editorMode: 'code',
    expr: expr,
    legendFormat: legend,
    range: !instant,
    instant: instant,
    format: format,
  },

  // Threshold steps from a base colour and [value, colour] pairs.
  thresholds(base, steps=[]):: {
    mode: 'absolute',
    steps: [{ color: base, value: null }] + [{ color: s[1], value: s[0] } for s in steps],
  },

  // A value mapping: {value: [text, colour]}, in the order given.
  valueMapping(pairs):: [{
    type: 'value',
    options: {
      [std.toString(pairs[i][0])]: { text: pairs[i][1], color: pairs[i][2], index: i }
      for i in std.range(0, std.length(pairs) - 1)
    },
  }],

  override(name, properties):: {
    matcher: { id: 'byName', options: name },
    properties: [{ id: k, value: properties[k] } for k in std.objectFields(properties)],
  },

  panel(type, title, description, pos, targets):: {
    type: type,
    title: title,
    description: description,
    gridPos: { x: pos[0], y: pos[1], w: pos[2], h: pos[3] },
    datasource: $.datasource,
    targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
  },

  stat(title, description, pos, targets, thresholds, unit='none', decimals=0, textMode='value'):: $.panel('stat', title, description, pos, targets) {
    fieldConfig: {
      defaults: {
        unit: unit,
        decimals: decimals,
        min: 0,
        color: { mode: 'thresholds' },
        thresholds: thresholds,
        mappings: [],
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'area',
      justifyMode: 'center',
      orientation: 'auto',
      textMode: textMode,
      wideLayout: true,
      showPercentChange: false,
    },
  },

  timeseries(title, description, pos, targets, unit, min=0, max=null, thresholds=$.thresholds('green'), thresholdsStyle='off', axisLabel='', legendCalcs=[]):: $.panel('timeseries', title, description, pos, targets) {
    fieldConfig: {
      defaults: {
        unit: unit,
        min: min,
        [if max != null then 'max']: max,
        color: { mode: 'palette-classic' },
        thresholds: thresholds,
        mappings: [],
        custom: {
          drawStyle: 'line',
          lineInterpolation: 'linear',
          lineWidth: 1,
          fillOpacity: 0,
          gradientMode: 'none',
          showPoints: 'never',
          pointSize: 4,
          spanNulls: false,
          axisPlacement: 'auto',
          axisLabel: axisLabel,
          axisCenteredZero: false,
          scaleDistribution: { type: 'linear' },
          stacking: { mode: 'none', group: 'A' },
          barAlignment: 0,
          hideFrom: { legend: false, tooltip: false, viz: false },
          thresholdsStyle: { mode: thresholdsStyle },
        },
      },
      overrides: [],
    },
    options: {
      legend: {
        displayMode: if legendCalcs == [] then 'list' else 'table',
        placement: 'bottom',
        showLegend: true,
        calcs: legendCalcs,
      },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  stateTimeline(title, description, pos, targets, mappings, rowHeight=0.85):: $.panel('state-timeline', title, description, pos, targets) {
    fieldConfig: {
      defaults: {
        unit: 'none',
        decimals: 0,
        color: { mode: 'thresholds' },
        thresholds: $.thresholds('text'),
        mappings: mappings,
        custom: {
          fillOpacity: 80,
          lineWidth: 0,
          spanNulls: false,
          hideFrom: { legend: false, tooltip: false, viz: false },
        },
      },
      overrides: [],
    },
    options: {
      mergeValues: true,
      showValue: 'auto',
      alignValue: 'left',
      rowHeight: rowHeight,
      legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
      tooltip: { mode: 'single', sort: 'none' },
    },
  },

  // A table of instant queries merged on their labels: `columns` maps a query's refId to
  // its column name, `labels` lists the label columns to show (in order), every other
  // label is hidden.
  table(title, description, pos, targets, labels, columns, hidden=[], overrides=[], sortBy=[]):: $.panel('table', title, description, pos, targets) {
    fieldConfig: {
      defaults: {
        color: { mode: 'thresholds' },
        thresholds: $.thresholds('text'),
        mappings: [],
        custom: {
          align: 'auto',
          cellOptions: { type: 'auto' },
          inspect: false,
          filterable: true,
        },
      },
      overrides: overrides,
    },
    options: {
      showHeader: true,
      cellHeight: 'sm',
      footer: { show: false, reducer: ['sum'], countRows: false, fields: '' },
      sortBy: sortBy,
    },
    // Grafana names the value of query A `Value #A` when a table has several queries.
    local valueColumns = ['Value #%s' % std.char(65 + i) for i in std.range(0, std.length(columns) - 1)],
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { [h]: true for h in ['Time', '__name__'] + hidden },
          indexByName: {
            [(std.map(function(l) l[0], labels) + valueColumns)[i]]: i
            for i in std.range(0, std.length(labels) + std.length(valueColumns) - 1)
          },
          renameByName: { [l[0]]: l[1] for l in labels } + {
            [valueColumns[i]]: columns[i]
            for i in std.range(0, std.length(columns) - 1)
          },
        },
      },
    ],
  },
}

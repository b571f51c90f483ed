import sys
from model import *

RB = 'https://github.com/idauth-exporter/idauth-exporter/blob/main/docs/runbook.md#'
WHAT = 'the ID authority behind {t} checks in {c}'


def hdur(s):
    s = int(s)
    d, r = divmod(s, 86400); h, r = divmod(r, 3600); m, sec = divmod(r, 60)
    if d: return '%dd %dh %dm %ds' % (d, h, m, sec)
    if h: return '%dh %dm %ds' % (h, m, sec)
    if m: return '%dm %ds' % (m, sec)
    return '%ds' % sec


def rates(r):
    r10, r1h = r if r else (None, None)
    return 'Last 10-minute window: %s success; last hour: %s.' % (pct(r10), pct(r1h))


def auth(alert, sev, c='NG', t='BVN', extra=None):
    return dict({'alertname': alert, 'severity': sev, 'job': JOB, 'country': c, 'id_type': t}, **(extra or {}))


UNWATCHED = ("No replica of idauth-exporter serves this pair any more, while they serve others: it was removed "
             "from the configuration (or from the provider's catalogue). This alert ends because the pair is no "
             "longer watched, not because the authority recovered.")


def offline(since, r=RATES['offline'], c='NG', t='BVN', extra=None, unwatched=False):
    return (auth('IdAuthorityOffline', 'critical', c, t, extra), {
        'summary': 'ID authority offline: %s %s' % (c, t),
        'description': 'Smile ID reports %s as offline: jobs against it fail with result code 1015. %s Offline since %s.' % (WHAT.format(c=c, t=t), rates(r), ts(since)),
        'runbook_url': RB + 'idauthorityoffline',
        'unwatched': UNWATCHED if unwatched else ''})


def degraded(since, r=RATES['interruption'], c='NG', t='BVN', extra=None, unwatched=False):
    return (auth('IdAuthorityDegraded', 'warning', c, t, extra), {
        'summary': 'ID authority degraded: %s %s' % (c, t),
        'description': 'Smile ID reports an interruption of %s: some jobs fail with result code 1015. %s Degraded since %s.' % (WHAT.format(c=c, t=t), rates(r), ts(since)),
        'runbook_url': RB + 'idauthoritydegraded',
        'unwatched': UNWATCHED if unwatched else ''})


def no_longer_watched(c='NG', t='BVN', extra=None):
    return (auth('IdAuthorityNoLongerWatched', 'info', c, t, extra), {
        'summary': 'ID authority no longer watched: %s %s' % (c, t),
        'description': "No replica of idauth-exporter has served %s %s for 15m, while they serve other pairs: it was removed from the configuration (or from the provider's catalogue, with discovery on). Its alerts have ended without a recovery, and its state is no longer known. Nothing to do if the removal was intended." % (c, t),
        'runbook_url': RB + 'idauthoritynolongerwatched'})


def flapping(n, r, c='NG', t='BVN'):
    return (auth('IdAuthorityFlapping', 'warning', c, t), {
        'summary': 'ID authority flapping: %s %s' % (c, t),
        'description': 'The state of %s changed %s times in the last 2h. %s' % (WHAT.format(c=c, t=t), n, rates(r)),
        'runbook_url': RB + 'idauthorityflapping'})


def unknown(last, c='NG', t='BVN', extra=None):
    return (auth('IdAuthorityStatusUnknown', 'warning', c, t, extra), {
        'summary': 'ID authority status unknown: %s %s' % (c, t),
        'description': 'No replica of idauth-exporter has had a fresh status of %s for 10m: its polls fail (for longer than the exporter keeps data), the provider has no data for the pair, or it reports a status the exporter does not know. Last observed: %s.' % (WHAT.format(c=c, t=t), ts(last) if last is not None else 'never'),
        'runbook_url': RB + 'idauthoritystatusunknown'})


def stale(age, c='NG', t='BVN'):
    return (auth('IdAuthorityDataStale', 'warning', c, t), {
        'summary': 'Stale provider data: %s %s' % (c, t),
        'description': "Smile ID last checked %s %s ago, although our polls succeed: the provider's own monitoring of it has stopped, and its reported state may be old." % (WHAT.format(c=c, t=t), hdur(age)),
        'runbook_url': RB + 'idauthoritydatastale'})


def down(extra=None):
    return (dict({'alertname': 'IdAuthExporterDown', 'severity': 'critical', 'job': JOB}, **(extra or {})), {
        'summary': 'idauth-exporter is down: nobody watches the ID authorities',
        'description': 'Prometheus cannot scrape any replica of idauth-exporter (%s), or has no such target: nobody is watching the ID authorities. Open pages stay open as last observed; new outages cannot page.' % JOB,
        'runbook_url': RB + 'idauthexporterdown'})


def replica_down(inst, extra=None):
    return (dict({'alertname': 'IdAuthExporterReplicaDown', 'severity': 'warning', 'job': JOB, 'instance': inst}, **(extra or {})), {
        'summary': 'idauth-exporter replica %s is down' % inst,
        'description': 'Prometheus cannot scrape %s; other replicas still watch the ID authorities, so nothing is missed, but there is no spare.' % inst,
        'runbook_url': RB + 'idauthexporterreplicadown'})


def stalled(age):
    return ({'alertname': 'IdAuthExporterStalled', 'severity': 'critical', 'job': JOB}, {
        'summary': 'idauth-exporter: no replica has polled for %s' % hdur(age),
        'description': 'Every replica of idauth-exporter is up, but none has started a poll cycle for %s (the schedule runs every 10m): every state it serves is going stale.' % hdur(age),
        'runbook_url': RB + 'idauthexporterstalled'})


def blind(age, extra=None):
    return (dict({'alertname': 'IdAuthExporterBlind', 'severity': 'critical', 'job': JOB}, **(extra or {})), {
        'summary': 'idauth-exporter is blind: no successful poll for %s' % hdur(age),
        'description': 'Prometheus can scrape idauth-exporter (%s), but no replica has completed a successful poll of Smile ID for %s: nobody is watching the ID authorities, and a new outage cannot page. Either every poll fails (the provider unreachable: idauth_poll_failures_total by reason) or the replicas crash before they finish one (restarts: changes(process_start_time_seconds[1h])). Open pages stay open as last observed.' % (JOB, hdur(age)),
        'runbook_url': RB + 'idauthexporterblind'})


def replica_stalled(inst, age):
    return ({'alertname': 'IdAuthExporterReplicaStalled', 'severity': 'warning', 'job': JOB, 'instance': inst}, {
        'summary': 'idauth-exporter replica %s: no poll cycle for %s' % (inst, hdur(age)),
        'description': 'The replica %s is up but has not started a poll cycle for %s; other replicas still poll.' % (inst, hdur(age)),
        'runbook_url': RB + 'idauthexporterreplicastalled'})


def polls_failing(inst, ratio):
    return ({'alertname': 'IdAuthExporterPollsFailing', 'severity': 'warning', 'job': JOB, 'instance': inst}, {
        'summary': 'idauth-exporter %s: most polls fail' % inst,
        'description': "%s of this replica's polls of Smile ID failed over the last 30 minutes. The authorities' states will turn unknown. Failures by reason are in idauth_poll_failures_total." % pct(ratio),
        'runbook_url': RB + 'idauthexporterpollsfailing'})


def unauthorized():
    return ({'alertname': 'IdAuthExporterUnauthorized', 'severity': 'critical', 'job': JOB}, {
        'summary': 'idauth-exporter: Smile ID refuses its credentials',
        'description': 'Every poll of every replica fails as unauthorized: the API key was rotated or revoked, belongs to the other environment, or the partner ID is wrong. No ID authority is being watched.',
        'runbook_url': RB + 'idauthexporterunauthorized'})


def q(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


class Test:
    def __init__(self, comment, replicas, provider, length, pairs=(('NG', 'BVN'),), extra_series=''):
        self.comment, self.replicas, self.provider = comment, replicas, provider
        self.length, self.pairs, self.extra = length, pairs, extra_series
        self.alerts, self.exprs = [], []

    def expect(self, alert, minutes, *alerts, note=None):
        for m in minutes:
            self.alerts.append((m, alert, alerts, note))
            note = None
        return self

    def promql(self, expr, minute, samples, note=None):
        self.exprs.append((expr, minute, samples, note))
        return self

    def render(self):
        out = []
        for line in self.comment.strip().splitlines():
            out.append('  # ' + line if line else '  #')
        out.append('  - interval: 1m')
        out.append('    input_series:')
        out.append(input_series(self.replicas, self.provider, self.pairs, self.length))
        if self.extra:
            out.append(self.extra.rstrip('\n'))
        if self.alerts:
            out.append('    alert_rule_test:')
            for m, alert, alerts, note in self.alerts:
                if note:
                    out.append('      # ' + note)
                out.append('      - eval_time: %dm' % m)
                out.append('        alertname: %s' % alert)
                if not alerts:
                    out.append('        exp_alerts: []')
                    continue
                out.append('        exp_alerts:')
                for labels, ann in alerts:
                    first = True
                    out.append('          - exp_labels:')
                    for k, v in labels.items():
                        if k == 'alertname':
                            continue
                        out.append('              %s: %s' % (k, q(v)))
                    out.append('            exp_annotations:')
                    for k, v in ann.items():
                        out.append('              %s: %s' % (k, q(v)))
        if self.exprs:
            out.append('    promql_expr_test:')
            for expr, m, samples, note in self.exprs:
                if note:
                    out.append('      # ' + note)
                out.append("      - expr: %s" % q(expr))
                out.append('        eval_time: %dm' % m)
                if not samples:
                    out.append('        exp_samples: []')
                    continue
                out.append('        exp_samples:')
                for labels, value in samples:
                    out.append('          - labels: %s' % q(labels))
                    out.append('            value: %s' % fmt(value))
        return '\n'.join(out)


def write(path, header, tests):
    text = header.strip() + '\n\nrule_files:\n  - ../alerts.yaml\n  - ../rules.yaml\n\nevaluation_interval: 1m\n\ntests:\n'
    text += '\n\n'.join(t.render() for t in tests) + '\n'
    open(path, 'w').write(text)

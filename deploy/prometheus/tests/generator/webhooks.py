from gen import *
import sys

RESULTS = ['success', 'rejected', 'timeout', 'unreachable']
REASONS = ['expired', 'overflow', 'removed']


class Outbox:
    """One replica's outbox for one webhook, as the exporter serves it (every result and
    reason from 0). `waits`: (start, end, age at start in seconds, how it ends, count): the
    changes waiting from minute `start` (retried every `every` minutes, each attempt failing
    with `fail`) until minute `end`, where they are delivered ('success') or given up on
    ('expired', 'overflow', 'removed'); `delivered`: minutes at which a change is delivered at
    the first attempt (nothing waits); `down`: minutes at which the replica cannot be scraped
    (no series; its counters go on when it is back). `lazy`: the counters appear only at their
    first increment, as an exporter that creates them on first use would serve them."""

    def __init__(self, instance, webhook, waits=(), delivered=(), fail='rejected', down=(), every=5, lazy=False):
        self.instance, self.webhook, self.lazy = instance, webhook, lazy
        self.waits, self.delivered, self.fail = waits, set(delivered), fail
        self.down, self.every = set(down), every

    def series(self, length):
        lab = 'job="%s",instance="%s",webhook="%s"' % (JOB, self.instance, self.webhook)
        pending, age = [], []
        results = {r: [] for r in RESULTS}
        reasons = {r: [] for r in REASONS}
        done = {r: 0 for r in RESULTS}
        dropped = {r: 0 for r in REASONS}
        for m in range(length):
            if m in self.delivered:
                done['success'] += 1
            n, oldest = 0, 0
            for start, end, age0, how, count in self.waits:
                if start <= m < end:
                    n += count
                    oldest = max(oldest, age0 + (m - start) * 60)
                    if (m - start) % self.every == 0:
                        done[self.fail] += count
                if m == end and how:
                    if how == 'success':
                        done['success'] += count
                    else:
                        dropped[how] += count
            gone = m in self.down
            pending.append(None if gone else n)
            age.append(None if gone else oldest)
            for r in RESULTS:
                results[r].append(None if gone else done[r])
            for r in REASONS:
                reasons[r].append(None if gone else dropped[r])
        out = [('idauth_webhook_pending{%s}' % lab, pending),
               ('idauth_webhook_oldest_pending_age_seconds{%s}' % lab, age)]
        out += [('idauth_webhook_deliveries_total{%s,result="%s"}' % (lab, r), v) for r, v in results.items()]
        out += [('idauth_webhook_dropped_total{%s,reason="%s"}' % (lab, r), v) for r, v in reasons.items()]
        lines = []
        for key, vals in out:
            if self.lazy and '_total{' in key:
                first = next((m for m, v in enumerate(vals) if v), None)
                if first is None:
                    continue
                vals = [None if m < first else v for m, v in enumerate(vals)]
            # A target that fails its scrape marks its series stale.
            vals = [('stale' if v is None and m > 0 and vals[m - 1] not in (None, 'stale') else v)
                    for m, v in enumerate(vals)]
            while vals and vals[-1] is None:
                vals = vals[:-1]
            lines.append("      - series: '%s'\n        values: '%s'" % (key, compress(vals)))
        return '\n'.join(lines)


def outboxes(length, *boxes):
    return '\n'.join(b.series(length) for b in boxes) + '\n'


def failing(webhook, age):
    return ({'alertname': 'IdAuthWebhookFailing', 'severity': 'warning', 'job': JOB, 'webhook': webhook}, {
        'summary': 'Webhook %s: changes of state undelivered for %s' % (webhook, hdur(age)),
        'description': 'Every replica of idauth-exporter (%s) has had a change of state waiting for delivery to the webhook %s for at least %s: the receiver has not got it from any of them (one replica\'s delivery would do: receivers deduplicate by webhook-id). idauth_webhook_deliveries_total by result says how deliveries fail (rejected: a non-2xx answer, such as 401 or 403 for a wrong secret; timeout; unreachable: connection refused, DNS, TLS), and the exporter log says why ("webhook delivery failed", webhook=%s). Nothing is lost yet: the outbox keeps the changes on disk and retries them for 24 hours or more.' % (JOB, webhook, hdur(age), webhook),
        'runbook_url': RB + 'idauthwebhookfailing'})


def replica_failing(inst, webhook, age):
    return ({'alertname': 'IdAuthWebhookReplicaFailing', 'severity': 'warning', 'job': JOB, 'instance': inst, 'webhook': webhook}, {
        'summary': 'idauth-exporter replica %s: webhook %s deliveries waiting for %s' % (inst, webhook, hdur(age)),
        'description': 'The replica %s has had a change of state waiting for delivery to the webhook %s for %s, while another replica has nothing waiting that long: the receiver most likely got the change from that replica (receivers deduplicate by webhook-id), and the way from this replica to the receiver is broken (its egress, DNS, proxy, firewall or CA certificates; the exporter log says why: "webhook delivery failed", webhook=%s). Nothing is lost while another replica delivers; this one gives up after 24 hours or more. If the other replicas started after the change without this one\'s store, they never had it: check the receiver as for IdAuthWebhookFailing.' % (inst, webhook, hdur(age), webhook),
        'runbook_url': RB + 'idauthwebhookreplicafailing'})


def lost(webhook):
    return ({'alertname': 'IdAuthWebhookEventsLost', 'severity': 'warning', 'job': JOB, 'webhook': webhook}, {
        'summary': 'Webhook %s: changes of state lost' % webhook,
        'description': 'Every replica of idauth-exporter (%s) gave up on some delivery to the webhook %s within the last 6h: it failed for 24 hours or more (expired), or the outbox for the webhook was full (overflow). The receiver has not got those changes from any replica, and nothing will send them again: replay them by hand from /api/v1/events (idauth_webhook_dropped_total by reason says which case it is).' % (JOB, webhook),
        'runbook_url': RB + 'idauthwebhookeventslost'})


T = []
A, B = 'a:9877', 'b:9877'
DAY = 86400

n = 110
t = Test('''The receiver of webhook crm refuses every delivery from 10m (401: its secret was rotated, ours
not), until it is fixed at 100m. Both replicas see the change at their polls (a at 11m, b at
12m) and retry it. IdAuthWebhookFailing fires once EVERY replica has waited more than an hour
(b, at 73m: the receiver has not got the change from anybody), stays while b cannot be
scraped (80m-85m: the minimum is then a's alone, no flap), and ends once the deliveries
succeed (and leave the 3-minute look-back). The webhook ops, delivered at once by both,
never fires; a, an hour over a minute before b, does not show as failing alone.''',
         [], None, n, extra_series=outboxes(
             n,
             Outbox(A, 'crm', waits=[(11, 100, 0, 'success', 1)]),
             Outbox(B, 'crm', waits=[(12, 100, 0, 'success', 1)], down=range(80, 86)),
             Outbox(A, 'ops', delivered=[11]),
             Outbox(B, 'ops', delivered=[12], down=range(80, 86))))
t.expect('IdAuthWebhookFailing', [30, 71, 72])
t.expect('IdAuthWebhookFailing', [73], failing('crm', (73 - 12) * 60))
t.expect('IdAuthWebhookFailing', [82], failing('crm', (79 - 12) * 60), note="b's last sample (79m) is still in the look-back")
t.expect('IdAuthWebhookFailing', [84], failing('crm', (84 - 11) * 60), note="b is gone from the look-back: a's wait alone")
t.expect('IdAuthWebhookFailing', [99], failing('crm', (99 - 12) * 60))
t.expect('IdAuthWebhookFailing', [102], failing('crm', (99 - 12) * 60), note='Delivered at 100m; the waits of 99m are still in the look-back')
t.expect('IdAuthWebhookFailing', [103, 109])
t.expect('IdAuthWebhookReplicaFailing', [72, 73, 80, 84, 90, 105])
t.expect('IdAuthWebhookEventsLost', [50, 109])
T.append(t)

n = 140
t = Test('''Only replica a cannot reach the receiver of crm (its node's egress is blocked) from 11m, until
130m; b delivered the change at 12m. The receiver has it (receivers deduplicate, one delivery
does): no IdAuthWebhookFailing. IdAuthWebhookReplicaFailing names a once it has waited more
than an hour (72m) for a poll period more (82m), and ends when a delivers.''',
         [], None, n, extra_series=outboxes(
             n,
             Outbox(A, 'crm', waits=[(11, 130, 0, 'success', 1)], fail='unreachable'),
             Outbox(B, 'crm', delivered=[12])))
t.expect('IdAuthWebhookReplicaFailing', [71, 72, 81])
t.expect('IdAuthWebhookReplicaFailing', [82], replica_failing(A, 'crm', (82 - 11) * 60))
t.expect('IdAuthWebhookReplicaFailing', [129], replica_failing(A, 'crm', (129 - 11) * 60))
t.expect('IdAuthWebhookReplicaFailing', [133, 139])
t.expect('IdAuthWebhookFailing', [50, 82, 120])
t.expect('IdAuthWebhookEventsLost', [120])
T.append(t)

n = 400
t = Test('''The receiver of crm has been down for a day: both replicas have had the same change waiting
since before the test (a for 23h 30m at 0m, b a minute less), and give up on it (expired) at
30m and 32m. IdAuthWebhookFailing fires until then; IdAuthWebhookEventsLost once every replica
has given up (32m), for 6 hours after the first gave up. IdAuthWebhookReplicaFailing does not
name b, alone waiting for the two minutes between. A third replica, c, had the change waiting
too and was replaced at 10m (its series end; its counters, still in the 6-hour window, show
no drop): it neither delivered the change nor hides the loss.''',
         [], None, n, extra_series=outboxes(
             n,
             Outbox(A, 'crm', waits=[(0, 30, DAY - 1800, 'expired', 1)], fail='timeout'),
             Outbox(B, 'crm', waits=[(0, 32, DAY - 1860, 'expired', 1)], fail='timeout'),
             Outbox('c:9877', 'crm', waits=[(0, 10, DAY - 1790, None, 1)], fail='timeout', down=range(10, n))))
t.expect('IdAuthWebhookFailing', [10], failing('crm', DAY - 1860 + 600))
t.expect('IdAuthWebhookFailing', [29], failing('crm', DAY - 1860 + 29 * 60))
t.expect('IdAuthWebhookFailing', [33, 60])
t.expect('IdAuthWebhookEventsLost', [29, 31])
t.expect('IdAuthWebhookEventsLost', [32, 200, 388], lost('crm'))
t.expect('IdAuthWebhookEventsLost', [392, 399])
t.expect('IdAuthWebhookReplicaFailing', [10, 31, 40])
T.append(t)

n = 120
t = Test('''Only replica a gives up on a change (expired at 30m, its egress blocked for a day), which b
delivered long ago: the receiver has it, no IdAuthWebhookEventsLost. IdAuthWebhookReplicaFailing
named a until then. b serves its counters only from their first increment (none here, so no
dropped_total series at all): it counts as having dropped nothing, since it serves the webhook.''',
         [], None, n, extra_series=outboxes(
             n,
             Outbox(A, 'crm', waits=[(0, 30, DAY - 1800, 'expired', 1)], fail='unreachable'),
             Outbox(B, 'crm', lazy=True)))
t.expect('IdAuthWebhookReplicaFailing', [11], replica_failing(A, 'crm', DAY - 1800 + 660))
t.expect('IdAuthWebhookReplicaFailing', [33, 60])
t.expect('IdAuthWebhookEventsLost', [31, 100])
t.expect('IdAuthWebhookFailing', [11, 100])
T.append(t)

n = 60
t = Test('''The outbox of webhook audit overflows on both replicas (a at 20m, b at 21m: its receiver has
been failing, and many changes wait): those changes are lost, IdAuthWebhookEventsLost fires for
audit. The webhook crm is removed from the configuration at 20m with a change pending
(dropped as removed, on purpose): not a loss.''',
         [], None, n, extra_series=outboxes(
             n,
             Outbox(A, 'audit', waits=[(0, 20, 0, 'overflow', 1), (0, 60, 0, None, 1000)]),
             Outbox(B, 'audit', waits=[(0, 21, 0, 'overflow', 1), (0, 60, 0, None, 1000)]),
             Outbox(A, 'crm', waits=[(0, 20, 0, 'removed', 1)]),
             Outbox(B, 'crm', waits=[(0, 20, 0, 'removed', 1)])))
t.expect('IdAuthWebhookEventsLost', [19, 20])
t.expect('IdAuthWebhookEventsLost', [21, 59], lost('audit'))
T.append(t)

write(sys.argv[1], '''# promtool test rules tests/webhooks.yaml (from deploy/prometheus)
#
# The webhook alerts. Every replica sends every change of state itself (the same
# webhook-id), and receivers deduplicate, so a receiver lacks a change only when no replica
# delivered it. Series are shaped like the exporter's: per replica (instance) and webhook,
# idauth_webhook_pending, idauth_webhook_oldest_pending_age_seconds (0 when none waits),
# idauth_webhook_deliveries_total by result and idauth_webhook_dropped_total by reason,
# every result and reason served from 0.''', T)

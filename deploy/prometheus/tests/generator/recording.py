from gen import *
import sys
ON, INT, OFF = 'online', 'interruption', 'offline'
T = []
L = 'job="idauth-exporter",country="NG",id_type="BVN"'
B = lambda n, **kw: Replica('b:9877', 0, n, polls=[m for m in range(n) if m % 10 == 2], **kw)

p = Provider([ON] * 2 + [INT] * 2 + [OFF] * 2 + [ON] * 10)
t = Test('''State, code, "since" and rates per authority from two replicas (a polls at 10k+1, b at
10k+2). At 21m a has the check of 20m (interruption), b still the check of 10m (online):
the newest check wins, rates included. Polls stop at 71m: code 3 (unknown) once the newest
check (60m) is older than max_data_age, state and "since" stay remembered.''',
         [Replica('a:9877', 0, 120, polls=[1, 11, 21, 31, 41, 51, 61]), Replica('b:9877', 0, 120, polls=[2, 12, 22, 32, 42, 52, 62])], p, 120)
S = 'country_id_type:idauth_state:code'
t.promql(S, 15, [('%s{%s}' % (S, L), 0)])
t.promql(S, 21, [('%s{%s}' % (S, L), 1)], note='b still says online, but a has the newer check.')
t.promql('country_id_type:idauth_state:latest', 21, [('country_id_type:idauth_state:latest{%s,state="interruption"}' % L, 1200)])
t.promql('country_id_type:idauth_success_rate_10m:latest', 21, [('country_id_type:idauth_success_rate_10m:latest{%s}' % L, 0.75)])
t.promql('country_id_type:idauth_success_rate_1h:latest', 21, [('country_id_type:idauth_success_rate_1h:latest{%s}' % L, 0.8)])
t.promql('country_id_type:idauth_state_since:timestamp_seconds{state="interruption"}', 35,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="interruption"}' % L, 1200)])
t.promql(S, 45, [('%s{%s}' % (S, L), 2)])
t.promql('country_id_type:idauth_state_since:timestamp_seconds{state="offline"}', 55,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="offline"}' % L, 2400)])
t.promql(S, 65, [('%s{%s}' % (S, L), 0)])
t.promql('country_id_type:idauth_state_since:timestamp_seconds', 65,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="online"}' % L, 3600)])
t.promql(S, 89, [('%s{%s}' % (S, L), 0)], note='The newest check (60m) is 29 minutes old.')
t.promql(S, 100, [('%s{%s}' % (S, L), 3)], note='Older than max_data_age (30m): unknown.')
t.promql('country_id_type:idauth_state:latest', 100, [('country_id_type:idauth_state:latest{%s,state="online"}' % L, 3600)])
t.promql('country_id_type:idauth_state_online:bool', 100, [])
t.promql('idauth_state_since_timestamp_seconds', 100,
         [('idauth_state_since_timestamp_seconds{%s,instance="a:9877"}' % L, 61 * 60 + 1800),
          ('idauth_state_since_timestamp_seconds{%s,instance="b:9877"}' % L, 62 * 60 + 1800)],
         note='Stale: each replica says unknown since its last success + max_data_age ...')
t.promql('country_id_type:idauth_state_since:timestamp_seconds', 100,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="online"}' % L, 3600)],
         note="... which is not the observed state's since: online since 60m, remembered.")
T.append(t)

p = Provider([ON] * 2 + [INT] * 3 + [ON] * 5)
t = Test('''"Since" from the replicas: a watches from 0m; b starts at 25m; every poll of c fails. a and
b report the interruption of 20m-40m from their own first check of it (20m and 30m): the
earliest, 20m, is the authority's. c never observed the pair: it has no since at all.''',
         [Replica('a:9877', 0, 60), Replica('b:9877', 25, 60, polls=[m for m in range(60) if m % 10 == 2]),
          Replica('c:9877', 0, 60, fail={m: 'timeout' for m in range(60)})], p, 60)
t.promql('idauth_state_since_timestamp_seconds', 35,
         [('idauth_state_since_timestamp_seconds{%s,instance="a:9877"}' % L, 1200),
          ('idauth_state_since_timestamp_seconds{%s,instance="b:9877"}' % L, 1800)])
t.promql('country_id_type_state:idauth_state_since_timestamp_seconds:min', 35,
         [('country_id_type_state:idauth_state_since_timestamp_seconds:min{%s,state="interruption"}' % L, 1200)])
t.promql('country_id_type:idauth_state_since:timestamp_seconds', 35,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="interruption"}' % L, 1200)])
t.promql('country_id_type:idauth_state_since:timestamp_seconds', 55,
         [('country_id_type:idauth_state_since:timestamp_seconds{%s,state="online"}' % L, 3000)])
T.append(t)

p = Provider([ON] * 30)
t = Test('''Availability across a pod change: pod a until 60m, pod c from 62m. One series per
authority (no instance), online all the time it was known.''',
         [Replica('a:9877', 0, 60), Replica('c:9877', 62, 150)], p, 150)
t.promql('country_id_type:idauth_availability:ratio_1d', 145, [('country_id_type:idauth_availability:ratio_1d{%s}' % L, 1)])
t.promql('country_id_type:idauth_availability:ratio_7d', 145, [('country_id_type:idauth_availability:ratio_7d{%s}' % L, 1)])
t.promql('country_id_type:idauth_state:code', 145, [('country_id_type:idauth_state:code{%s}' % L, 0)])
T.append(t)

p = Provider([ON] * 2 + [OFF] * 30)
t = Test('''Availability is the share of time online: online 0m-20m then offline.''', [Replica('a:9877', 0, 60)], p, 60)
t.promql('country_id_type:idauth_state_online:bool', 15, [('country_id_type:idauth_state_online:bool{%s}' % L, 1)])
t.promql('country_id_type:idauth_state_online:bool', 45, [('country_id_type:idauth_state_online:bool{%s}' % L, 0)])
T.append(t)

write(sys.argv[1], '''# promtool test rules tests/recording.yaml (from deploy/prometheus)
#
# The recording rules the alerts and the dashboard are built on: one series per authority
# whatever the replicas, in the provider's time. Series as in authorities.yaml.''', T)

% consult/1 of a file with evidence, plus a neural fact.
:- consult('../lib/alarm_base.pl').
nn(hear_net, [X]) :: hears(X).
calls(X) :- alarm, hears(X).

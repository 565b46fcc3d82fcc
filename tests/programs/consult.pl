% consult/1 of a file with evidence: the consulted file's evidence counts.
:- consult('lib/alarm_base.pl').
query(burglary).
query(alarm).

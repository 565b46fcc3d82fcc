% Evidence (one-argument form) conditions the queries.
0.6::burglary.
0.2::earthquake.
0.9::alarm :- burglary.
0.8::alarm :- earthquake.
0.1::alarm :- \+ burglary, \+ earthquake.
evidence(alarm).
query(burglary).
query(earthquake).

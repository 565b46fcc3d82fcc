% Probabilistic clauses: rule-level probabilities.
0.6::burglary.
0.2::earthquake.
0.9::alarm :- burglary.
0.8::alarm :- earthquake.
query(alarm).

% An annotated disjunction summing to less than 1 (the rest is "none").
0.2::die(1); 0.2::die(2); 0.1::die(3).
some :- die(_).
query(die(X)).
query(some).

% A query-generating rule whose body is itself probabilistic: ProbLog queries every
% possible answer of the body.
0.5::candidate(1). candidate(2).
0.3::q(1). 0.7::q(2).
query(q(X)) :- candidate(X).

% A comparison with an unbound argument.
0.5::p(1).
q(X) :- X < 3, p(X).
query(q(_)).

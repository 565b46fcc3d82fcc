% between/3 with an unbound bound.
r(X) :- between(1, N, X).
query(r(_)).

% is/2 with an unbound right-hand side.
a(X) :- Y is X + 1.
query(a(_)).

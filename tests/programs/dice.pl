% Two dice as annotated disjunctions; sums and comparisons.
1/6::die(A, 1); 1/6::die(A, 2); 1/6::die(A, 3); 1/6::die(A, 4); 1/6::die(A, 5); 1/6::die(A, 6) :- dice(A).
dice(d1). dice(d2).
sum(S) :- die(d1, X), die(d2, Y), S is X + Y.
double :- die(d1, X), die(d2, X).
query(sum(_)).
query(double).
evidence(die(d1, 6), false).

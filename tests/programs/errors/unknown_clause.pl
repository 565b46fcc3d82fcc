% A rule calls a predicate that has no clauses.
0.5::a.
b :- a, c.
query(b).

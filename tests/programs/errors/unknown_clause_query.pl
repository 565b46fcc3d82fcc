% A query about a predicate that has no clauses.
0.5::a.
query(nope(1)).

% A probabilistic fact with a variable that the query leaves free.
0.3::p(X).
query(p(_)).

% Deterministic queries that are all false.
a :- fail.
b :- a.
query(a).
query(b).

% Nested negation.
0.35::p.
q :- \+ \+ p.
r :- \+ q.
query(q). query(r).

% Mutual recursion between two predicates (cycle through positive literals).
0.3::x. 0.4::y.
p :- x.
p :- q.
q :- y.
q :- p.
query(p). query(q).

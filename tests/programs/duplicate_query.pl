% The same query stated twice (and once more by a rule) is answered once.
0.3::a.
query(a).
query(a).
query(a) :- true.

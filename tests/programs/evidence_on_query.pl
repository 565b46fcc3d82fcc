% Querying an atom that is also evidence gives 1.
0.3::a. 0.4::b.
c :- a.
c :- b.
evidence(c).
query(c). query(a).

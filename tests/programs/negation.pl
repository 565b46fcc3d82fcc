% Negation as failure on probabilistic atoms.
0.3::a. 0.6::b.
c :- \+ a.
d :- \+ a, \+ b.
e :- \+ c.
query(c). query(d). query(e).

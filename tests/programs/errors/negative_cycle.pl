% Negation through a cycle (not stratified).
0.5::c.
a :- \+ b, c.
b :- \+ a.
query(a).

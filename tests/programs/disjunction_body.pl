% Disjunction (;) in rule bodies.
0.3::a. 0.5::b.
x(yes) :- a.
x(no) :- \+ a.
y :- (a ; b).
z :- a, (b ; \+ b).
w :- (a, \+ b ; b, \+ a).
query(x(_)). query(y). query(z). query(w).

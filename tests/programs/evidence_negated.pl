% Evidence on a negated atom (\+ form) and two-argument true form mixed.
0.5::a. 0.5::b. 0.3::c.
x :- a, b.
y :- b, c.
evidence(\+ x).
evidence(c, true).
query(a). query(b). query(y).

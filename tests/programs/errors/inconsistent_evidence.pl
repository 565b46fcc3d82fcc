% The same atom is evidence true and false.
0.5::a.
evidence(a, true).
evidence(a, false).
query(a).

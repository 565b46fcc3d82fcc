% Non-ground queries without answers: problog lists the query itself (variables renamed) at 0,
% also when it is the evidence that removes every answer.
a(1).
0.5::c.
b(X) :- a(X), c.
e(X) :- a(X), fail.
evidence(\+ c).
query(b(X)).
query(e(Y)).

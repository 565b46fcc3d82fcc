% Left-recursive path (needs tabling).
0.5::e(a, b). 0.5::e(b, c). 0.5::e(c, a). 0.5::e(b, d).
p(X, Y) :- p(X, Z), e(Z, Y).
p(X, Y) :- e(X, Y).
query(p(a, _)).

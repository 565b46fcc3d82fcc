% A probabilistic clause with variables: one independent event per grounding.
person(a). person(b). person(c).
0.3::stress(X) :- person(X).
friend(a, b). friend(b, c). friend(c, a).
0.2::influences(X, Y) :- friend(X, Y).
smokes(X) :- stress(X).
smokes(X) :- friend(X, Y), influences(Y, X), smokes(Y).
query(smokes(_)).

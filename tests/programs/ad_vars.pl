% An annotated disjunction with variables: one independent choice per ball.
ball(1). ball(2). ball(3).
0.3::col(X, red); 0.7::col(X, blue) :- ball(X).
same :- col(1, C), col(2, C).
two_red :- col(X, red), col(Y, red), X < Y.
query(col(2, red)).
query(same).
query(two_red).

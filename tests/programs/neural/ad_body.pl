% An annotated disjunction whose body is a neural choice.
nn(cloud_net, [X], C, [yes, no]) :: cloudy(X, C).
0.6::weather(X, rain); 0.3::weather(X, snow) :- cloudy(X, yes).
0.1::weather(X, rain); 0.9::weather(X, sun) :- cloudy(X, no).

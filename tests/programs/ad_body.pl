% An annotated disjunction with a body.
0.4::cloudy.
0.6::weather(rain); 0.3::weather(snow) :- cloudy.
0.1::weather(rain); 0.9::weather(sun) :- \+ cloudy.
query(weather(_)).

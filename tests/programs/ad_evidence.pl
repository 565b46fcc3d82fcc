% Conditioning an annotated disjunction.
0.1::mood(angry); 0.3::mood(sad); 0.6::mood(happy).
0.9::smile :- mood(happy).
0.2::smile :- mood(sad).
evidence(smile, false).
query(mood(_)).

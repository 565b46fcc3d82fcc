% A scene choice into a scene valence/arousal table, crossed with a face choice (the shape of
% the 365 x 7 research programs, small enough for problog's own compiler to answer as a reference);
% the combined (valence, arousal) pair feeds a neural predicate over computed values.
% Two rules combine the pair (by the distance of face and scene valence); the answers over
% the three labels sum to 1 exactly when exactly one of them fires for every pair.
nn(scene_net, [X], S, [s0, s1, s2]) :: scene(X, S).
nn(face_net, [X], E, [angry, happy, neutral]) :: face_expr(X, E).
nn(va_net, [V, A], Y, [joy, trust, anger]) :: va_emotion(V, A, Y).
scene_va(s0, -1.0, 6.0).
scene_va(s1, -2.1, 2.5).
scene_va(s2, 1.1, 0.3).
face_va(angry, -2.0, 4.5).
face_va(happy, 2.4, 3.8).
face_va(neutral, 0.0, 2.0).
scene_point(S, V, A) :- scene(S, C), scene_va(C, V, A).
face_point(F, V, A) :- face_expr(F, E), face_va(E, V, A).
combine(FV, FA, SV, SA, V, A) :- D is abs(FV - SV), D =< 1.5, V is (2*FV + SV) / 3, A is (2*FA + SA) / 3.
combine(FV, FA, SV, SA, SV, SA) :- D is abs(FV - SV), D > 1.5.
final_emotion([], S, Y) :- scene_point(S, V, A), va_emotion(V, A, Y).
final_emotion([F|_], S, Y) :- scene_point(S, SV, SA), face_point(F, FV, FA), combine(FV, FA, SV, SA, V, A), va_emotion(V, A, Y).

% The float trap at a rule's boundary: |5.4 - 2.4| is 3.0 after `D is ...` (ProbLog rounds
% float constants to 15 decimals) but 3.0000000000000004 inline, so for a happy face in scene
% s0 both combine rules fire; for an angry face in scene s2 neither does (the gap 3 < D =< 4).
nn(scene_net, [X], S, [s0, s1, s2]) :: scene(X, S).
nn(face_net, [X], E, [angry, happy, neutral]) :: face_expr(X, E).
nn(va_net, [V, A], Y, [joy, trust, anger]) :: va_emotion(V, A, Y).
scene_va(s0, 2.4, 3.0).
scene_va(s1, -1.0, 2.0).
scene_va(s2, 1.5, 5.0).
face_va(angry, -2.0, 4.5).
face_va(happy, 5.4, 3.8).
face_va(neutral, 0.0, 2.0).
combine(FV, FA, SV, SA, V, A) :- D is abs(FV - SV), D =< 3, V is (2*FV + SV) / 3, A is (2*FA + SA) / 3.
combine(FV, FA, SV, SA, SV, SA) :- abs(FV - SV) > 3, abs(FV - SV) =< 3.4.
final_emotion([F|_], S, Y) :- scene(S, C), scene_va(C, SV, SA), face_expr(F, E), face_va(E, FV, FA), combine(FV, FA, SV, SA, V, A), va_emotion(V, A, Y).

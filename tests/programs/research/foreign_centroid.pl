% A foreign Python predicate: nearest_emotion/3 (va_tools.nearest_emotion, registered as
% DeepProbLog's register_foreign) maps a valence/arousal pair to the Emo8 emotion of the
% nearest centroid; the face's or the scene mood's pair, and a little noise over Emo8 so that
% no label has probability 0.
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).
nn(scene_mood, [I], M, [calm_pos, calm_neg, tense_pos, tense_neg]) :: mood(I, M).

face_va(angry, -0.5, 0.85). face_va(disgust, -0.6, 0.3). face_va(fear, -0.7, 0.7). face_va(happy, 0.8, 0.5).
face_va(sad, -0.7, -0.4). face_va(surprise, 0.3, 0.8). face_va(neutral, 0.0, -0.2).
mood_va(calm_pos, 0.5, -0.4). mood_va(calm_neg, -0.4, -0.5). mood_va(tense_pos, 0.4, 0.6). mood_va(tense_neg, -0.5, 0.6).

t(0.7)::faces_first.
0.05::noise.
0.125::any(joy); 0.125::any(trust); 0.125::any(fear); 0.125::any(surprise);
0.125::any(sadness); 0.125::any(disgust); 0.125::any(anger); 0.125::any(anticipation).

emotion(Faces, I, E) :- noise, any(E).
emotion([F|_], I, E) :- \+ noise, faces_first, expression(F, X), face_va(X, V, A), nearest_emotion(V, A, E).
emotion([F|_], I, E) :- \+ noise, \+ faces_first, mood(I, M), mood_va(M, V, A), nearest_emotion(V, A, E).
emotion([], I, E) :- \+ noise, mood(I, M), mood_va(M, V, A), nearest_emotion(V, A, E).

% A network over numbers the program computes: the first face's expression and the scene's
% mood each give a valence/arousal pair, combined with is/2 (the face counts twice), and a
% trainable network maps the combined pair to Emo8.
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).
nn(scene_mood, [I], M, [calm_pos, calm_neg, tense_pos, tense_neg]) :: mood(I, M).
nn(va_to_emotion, [V, A], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: va_emotion(V, A, E).

face_va(angry, -0.6, 0.8). face_va(disgust, -0.6, 0.3). face_va(fear, -0.7, 0.7). face_va(happy, 0.8, 0.5).
face_va(sad, -0.7, -0.4). face_va(surprise, 0.3, 0.8). face_va(neutral, 0.0, -0.2).
mood_va(calm_pos, 0.5, -0.4). mood_va(calm_neg, -0.4, -0.5). mood_va(tense_pos, 0.4, 0.6). mood_va(tense_neg, -0.5, 0.6).

emotion([F|_], I, E) :- expression(F, X), face_va(X, FV, FA), mood(I, M), mood_va(M, SV, SA),
    CV is (2*FV + SV) / 3, CA is (2*FA + SA) / 3, va_emotion(CV, CA, E).
emotion([], I, E) :- mood(I, M), mood_va(M, V, A), va_emotion(V, A, E).

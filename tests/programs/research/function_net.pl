% A neural predicate given as a Python function (va_tools.soft_centroid: a soft nearest
% centroid from a valence/arousal pair to Emo8) over the pair the program computes, and a
% learned choice between the largest face and the scene's mood.
nn(expr, [F], X, [angry, disgust, fear, happy, sad, surprise, neutral]) :: expression(F, X).
nn(mood_net, [I], M, [calm_pos, calm_neg, tense_pos, tense_neg]) :: mood(I, M).
nn(centroid, [V, A], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: centroid_emotion(V, A, E).

face_va(angry, -0.6, 0.8). face_va(disgust, -0.6, 0.3). face_va(fear, -0.7, 0.7). face_va(happy, 0.8, 0.5).
face_va(sad, -0.7, -0.4). face_va(surprise, 0.3, 0.8). face_va(neutral, 0.0, -0.2).
mood_va(calm_pos, 0.5, -0.4). mood_va(calm_neg, -0.4, -0.5). mood_va(tense_pos, 0.4, 0.6). mood_va(tense_neg, -0.5, 0.6).

t(_)::source(face); t(_)::source(scene).

emotion([F|_], I, E) :- source(face), expression(F, X), face_va(X, V, A), centroid_emotion(V, A, E).
emotion([F|_], I, E) :- source(scene), mood(I, M), mood_va(M, V, A), centroid_emotion(V, A, E).
emotion([], I, E) :- mood(I, M), mood_va(M, V, A), centroid_emotion(V, A, E).

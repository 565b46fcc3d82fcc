% A network over each face's embedding (the recogniser's features, not its probabilities): the
% largest face's Emo8 emotion, trusted with a learned probability, else the scene's.
nn(feat_emotion, [F], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: face_emotion(F, E).
nn(scene_emotion, [I], E, [joy, trust, fear, surprise, sadness, disgust, anger, anticipation]) :: scene_says(I, E).

t(0.5)::look_at_faces.

emotion([F|_], I, E) :- look_at_faces, face_emotion(F, E).
emotion([F|_], I, E) :- \+ look_at_faces, scene_says(I, E).
emotion([], I, E) :- scene_says(I, E).

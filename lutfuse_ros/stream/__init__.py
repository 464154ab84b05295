"""The frame path between the node's message layer and the pipeline, without ROS.

In the order a frame takes it:

1. :mod:`~lutfuse_ros.stream.camera_frame`: one camera image (stamp, frame id, pixels as
   an array or, from a compressed camera, still encoded).
2. :mod:`~lutfuse_ros.stream.pairing`: approximate-time pairing by stamp
   (:mod:`~lutfuse_ros.stream.message_filters_pairing` when ``message_filters`` is asked for).
3. :mod:`~lutfuse_ros.stream.fusion_stream`: pairs -> output gate and rate limit ->
   :mod:`~lutfuse_ros.stream.latest_wins_worker` (one worker thread, the newest pair wins).
4. :mod:`~lutfuse_ros.stream.fusion_step`: on the worker, decode and fuse one pair with the
   model in the :mod:`~lutfuse_ros.stream.step_slot` (:class:`~lutfuse_ros.pipeline.FusionPipeline`)
   and hand back a :class:`~lutfuse_ros.stream.fusion_step.FusedFrame`, which the node's
   message layer publishes.
"""

"""The planar wing: what a robot that moves in the plane needs among obstacles, for any such robot
(no maze, no simulator). Occupancy maps, their distance fields, costs and routes (`costmap`), the
avoidance recipe of guide, candidates and route (`avoidance`), the keep-out shield that brakes the
robot before an obstacle (`shield`), and all of it as the map a receding loop plans among
(`surroundings`). The robot brings its braking model and its state's position and velocity columns."""

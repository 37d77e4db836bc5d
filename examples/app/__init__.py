"""The example shop: one small web application in two versions (blue = v1, green = v2) sharing one
PostgreSQL database across a blue-green release that bgmigrate plans and runs. See README.md."""

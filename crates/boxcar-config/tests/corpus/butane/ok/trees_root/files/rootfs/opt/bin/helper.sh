#!/bin/sh
echo not executable here

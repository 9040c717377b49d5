'use strict';
Console.start();

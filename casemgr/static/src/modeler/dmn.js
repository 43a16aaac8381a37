/*
 * dmn-js's modeler as window.DmnJS for static/js/modeler_dmn.js, built here for production
 * (see build.cjs); nothing of dmn-js is changed.
 */
import DmnModeler from 'dmn-js/lib/Modeler';

window.DmnJS = DmnModeler;
